#!/usr/bin/env bash
# Baseline: lab 2's checks written the way interactive-lab verify scripts are, one docker
# command per check. Uses $DOCKER_HOST. Prints one line per check and a score.
set -u
score=0
ok() { score=$((score + 1)); echo "ok   $1"; }
no() { echo "FAIL $1"; }
check() { local name=$1; shift; if "$@" >/dev/null 2>&1; then ok "$name"; else no "$name"; fi; }
net() { docker network inspect "$1" --format '{{.Driver}}' | grep -qx bridge; }
running() { [ "$(docker inspect -f '{{.State.Running}} {{.Config.Image}}' "$1")" = "true $2" ]; }
on() { docker inspect -f "{{json .NetworkSettings.Networks}}" "$1" | grep -q "\"$2\""; }
app() { docker ps -q --filter ancestor=katacoda/redis-node-docker-example | head -1; }
probe() { local n=$1; shift; docker run --rm --net="$n" alpine sh -c "$*"; }

check backend-network net backend-network
check redis-running running redis redis
check redis-on-backend on redis backend-network
check env-ran sh -c "docker ps -a --filter ancestor=alpine --format '{{.Command}} {{.Networks}}' | grep -q '\"env\" backend-network'"
check no-link-env sh -c "! docker run --rm --net=backend-network alpine env | grep -q REDIS_"
check no-hosts-entry sh -c "! docker run --rm --net=backend-network alpine cat /etc/hosts | grep -qw redis"
check resolv-ran sh -c "docker ps -a --filter ancestor=alpine --format '{{.Command}}' | grep -q resolv.conf"
check embedded-dns sh -c "docker run --rm --net=backend-network alpine cat /etc/resolv.conf | grep -q 'nameserver 127.0.0.11'"
check ping-ran sh -c "docker ps -a --filter ancestor=alpine --format '{{.Command}}' | grep -q 'ping -c1 redis'"
check redis-resolves sh -c "[ \"\$(probe_ip=\$(docker run --rm --net=backend-network alpine getent hosts redis | cut -d' ' -f1); echo \$probe_ip)\" = \"\$(docker inspect -f '{{.NetworkSettings.Networks.backend-network.IPAddress}}' redis 2>/dev/null || docker inspect -f '{{(index .NetworkSettings.Networks \"backend-network\").IPAddress}}' redis)\" ]"
check redis-pong sh -c "docker run --rm --net=backend-network alpine sh -c \"printf 'PING\r\nQUIT\r\n' | nc -w 3 redis 6379\" | grep -q PONG"
check frontend-network net frontend-network
check app-running sh -c "[ -n \"\$(docker ps -q --filter ancestor=katacoda/redis-node-docker-example)\" ]"
check app-on-frontend on "$(app)" frontend-network
check app-port sh -c "docker port $(app) 3000/tcp | grep -q ':3000$'"
check app-stored-hits sh -c "docker exec redis redis-cli INFO keyspace | grep -q 'db0:keys=[1-9]'"
check frontend-network2 net frontend-network2
check redis-alias-db sh -c "docker inspect -f '{{json .NetworkSettings.Networks}}' redis | grep -q '\"db\"'"
check db-resolves sh -c "docker run --rm --net=frontend-network2 alpine getent hosts db | grep -q ."
check redis-off-frontend sh -c "! docker inspect -f '{{json .NetworkSettings.Networks}}' redis | grep -q '\"frontend-network\"'"
echo "score $score/20"
