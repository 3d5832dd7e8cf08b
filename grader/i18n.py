"""Hints, and why a check is blocked, in the students' languages. A computed text is a
``Text``: an English sentence that keeps its template and values, so ``say`` can put it in
Indonesian (``--lang id``). Commands (``docker network connect ...``) are the same in every
language."""

from __future__ import annotations

from typing import Any


class Text(str):
    def __new__(cls, template: str, **values: Any) -> Text:
        text = super().__new__(cls, template.format(**values))
        text.template, text.values = template, values
        return text

    template: str
    values: dict[str, Any]


def say(text: str, lang: str) -> str:
    """``text`` in ``lang`` when there is a translation of its template, else as it is."""
    template = CATALOGS.get(lang, {}).get(text.template) if isinstance(text, Text) else None
    return template.format(**text.values) if template and isinstance(text, Text) else str(text)


INDONESIAN = {
    "blocked: needs {checks}": "terblokir: perlu {checks} dulu",
    "start it: {how}": "jalankan: {how}",
    "create it: docker network create {name}": "buat dulu: docker network create {name}",
    "recreate it with --driver {driver}": "buat ulang dengan --driver {driver}",
    "remove it and start it from the right image: docker run ... {image}": (
        "hapus lalu jalankan dari image yang benar: docker run ... {image}"
    ),
    "start it again: docker start {name}": "jalankan lagi: docker start {name}",
    "run it with -p {host_port}:{port}": "jalankan dengan -p {host_port}:{port}",
    "run it with --link {target}:{alias}": "jalankan dengan --link {target}:{alias}",
    "link variables come only with --link on the default bridge": (
        "variabel link hanya ada dengan --link di jaringan bridge bawaan"
    ),
    "link the container: --link {target}:{name}": "hubungkan kontainernya: --link {target}:{name}",
    "the embedded DNS serves user-defined networks only: docker network create ...": (
        "DNS bawaan Docker hanya melayani jaringan buatan sendiri: docker network create ..."
    ),
    "attach the container to {network} with that name or alias": (
        "sambungkan kontainernya ke {network} dengan nama atau alias itu"
    ),
    "another container answers to {name} on {network}": "kontainer lain yang menjawab nama {name} di {network}",
    "is {what} running and on {network}?": "apakah {what} berjalan dan tersambung ke {network}?",
    "the app answers only when it can reach redis by that name on its network": (
        "aplikasi hanya menjawab jika bisa menjangkau redis dengan nama itu di jaringannya"
    ),
    "the app cannot store its count in redis": "aplikasi tidak bisa menyimpan hitungannya di redis",
    "is {what} a Redis server? run it from the redis image": ("apakah {what} server Redis? jalankan dari image redis"),
}

CATALOGS = {"id": INDONESIAN}
