# Fleet mode's test rig (sourced after lib.sh): Debian's redis-server with an ACL user per host,
# and hosts each in a network namespace of its own (with its own nftables table, logs, state
# and control socket), joined to Redis by a veth pair. Used by fleet_test.sh and
# tests/bench/fleet_bench.sh. Needs $bin and $src; sets $work, and removes everything it
# made on exit (KEEP=1 keeps $work).
#
# fleet_init HOSTS...             Redis' configuration, the fleet key; the hosts' names
# fleet_host NAME IGNORE RULES [FLEET_EXTRA]   a host's namespace and relayban.yaml
# start_redis, start_host NAME, stop_host NAME, cli NAME ARGS..., fleet_field NAME EXPR
work=$(mktemp -d /tmp/relayban-fleet.XXXXXX)
tag=rbf$$
hosts=
declare -A pids=()
redis_pid=
fleet_cleanup() {
  for h in $hosts; do [ -n "${pids[$h]:-}" ] && kill -9 "${pids[$h]}" 2>/dev/null; done
  [ -n "$redis_pid" ] && kill -9 "$redis_pid" 2>/dev/null
  for h in $hosts; do ip netns del "$tag-$h" 2>/dev/null; done
  [ -n "${KEEP:-}" ] && { echo "kept $work"; return; }
  rm -rf "$work"
}
trap fleet_cleanup EXIT
ip link set lo up
port=6390
# What fleet mode needs, on its fleet's keys only: no FLUSH*, CONFIG, KEYS, DEBUG. The README
# gives the same line.
fleet_acl='resetkeys ~rb:{prod}:* resetchannels -@all +multi +exec +xadd +xread +xinfo|stream +zadd +zrem +zrangebyscore +zremrangebyscore +zcard +zremrangebyrank +hset +hgetall +del +set +get +pexpire +pexpireat +persist +evalsha +eval +ping'
rcli() { redis-cli -h 127.0.0.1 -p $port --no-auth-warning -a adminpw "$@"; }
fleet_init() {
  hosts="$*"
  cat > "$work/redis.conf" <<CONF
bind 0.0.0.0
port $port
protected-mode no
save ""
appendonly no
daemonize no
dir $work
logfile $work/redis.log
user default on >adminpw ~* &* +@all
CONF
  local h
  for h in $hosts; do echo "user $h on >pw-$h $fleet_acl" >> "$work/redis.conf"; done
  openssl rand -hex 32 > "$work/fleet.key"; chmod 600 "$work/fleet.key"
}
start_redis() {
  redis-server "$work/redis.conf" >/dev/null 2>&1 & redis_pid=$!
  until_true rcli ping
}
fleet_hosts_made=0
fleet_host() {  # fleet_host NAME IGNORE RULES [FLEET_EXTRA]
  local h=$1 ignore=$2 rules=$3 extra=${4:-} n ns d
  fleet_hosts_made=$((fleet_hosts_made + 1)); n=$fleet_hosts_made
  ns=$tag-$h
  ip netns add "$ns" || return 1
  ip link add "v$h" type veth peer name eth0 netns "$ns"
  ip addr add "10.250.$n.1/24" dev "v$h"; ip link set "v$h" up
  ip netns exec "$ns" ip addr add "10.250.$n.2/24" dev eth0
  ip netns exec "$ns" ip link set eth0 up
  ip netns exec "$ns" ip link set lo up
  d=$work/$h; mkdir -p "$d/log" "$d/state"; : > "$d/log/mail.log"
  printf 'pw-%s\n' "$h" > "$d/redis.password"; chmod 600 "$d/redis.password"
  cat > "$d/relayban.yaml" <<YAML
state_dir: $d/state
control_socket: $d/control.sock
ignore: $ignore
decision_log: $d/decisions.log
include: [$src/etc/relayban/filters.d/*.yaml]
fleet:
  redis: "10.250.$n.1:$port"
  name: prod
  host: $h
  user: $h
  password_file: $d/redis.password
  key_file: $work/fleet.key
$extra
jails:
  postfix:
    enabled: yes
    logs: [$d/log/mail.log]
    filters: [postfix]
    rules:
$rules
YAML
}
cfg() { echo "$work/$1/relayban.yaml"; }
cli() { local h=$1; shift; "$bin" "$@" -c "$(cfg "$h")"; }
start_host() {
  local h=$1
  daemon_log=$work/$h/daemon.log
  ip netns exec "$tag-$h" "$bin" daemon -c "$(cfg "$h")" >> "$work/$h/daemon.log" 2>&1 & pids[$h]=$!
  until_true cli "$h" status
}
stop_host() { kill -TERM "${pids[$1]}"; wait "${pids[$1]}" 2>/dev/null; pids[$1]=; }
fleet_field() {  # fleet_field HOST PYTHON_EXPR (over f = status.fleet)
  cli "$1" status --json 2>/dev/null | python3 -c 'import json,sys; f=json.load(sys.stdin).get("fleet",{}); print(eval(sys.argv[1]))' "$2"
}
fleet_is() { [ "$(fleet_field "$1" "$2")" = "True" ]; }
banned_in() { ip netns exec "$tag-$1" nft get element inet relayban "$2" "{ $3 }" >/dev/null 2>&1; }
