"""The real test bench: private Docker engines in network namespaces, lab images built
offline, and the two labs played exactly as students type them."""
