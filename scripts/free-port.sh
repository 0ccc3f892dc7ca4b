# Sourced by scripts/with-redis.sh and scripts/with-postgres.sh: a free TCP port on loopback.
# Expects a `log` function from the script that sources it.

port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

free_port() {
    local port
    if command -v python3 >/dev/null 2>&1 &&
        port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()' 2>/dev/null) &&
        [[ "$port" =~ ^[0-9]+$ ]]; then
        printf '%s' "$port"
        return
    fi
    for _ in $(seq 1 200); do
        port=$((20000 + RANDOM % 40000))
        if ! port_in_use "$port"; then
            printf '%s' "$port"
            return
        fi
    done
    log "could not find a free TCP port on 127.0.0.1"
    return 1
}
