#!/usr/bin/env bash
# Run a single-node Apache Kafka broker (KRaft: broker and controller in one process) on 127.0.0.1 for
# Conveyor's tests and for trying the distributed mode on one machine. The broker's jars come from Maven
# Central through `mvn` (no other download site can be reached) and run on the machine's Java 17.
# Idempotent: when a broker already answers on the port, nothing is done; jars and storage are kept.
#
#   CONVEYOR_KAFKA_PORT     the client port (default 19092; the controller listens on the next one)
#   CONVEYOR_KAFKA_VERSION  the org.apache.kafka:kafka_2.13 version (default 4.1.1)
#   CONVEYOR_KAFKA_DATA     config and log segments (default /var/lib/conveyor-kafka)
#   CONVEYOR_KAFKA_CACHE    where jars are kept (default /var/cache/conveyor/kafka)
#   CONVEYOR_KAFKA_LOG      the broker's own log (default /var/log/conveyor-kafka.log)
#   CONVEYOR_PYTHON         a Python with aiokafka, to ask the broker for metadata (default .venv/bin/python)
set -Eeuo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PORT="${CONVEYOR_KAFKA_PORT:-19092}"
CONTROLLER_PORT=$((PORT + 1))
VERSION="${CONVEYOR_KAFKA_VERSION:-4.1.1}"
LOG4J_VERSION=2.24.3
SLF4J_VERSION=2.0.17  # log4j-slf4j2-impl needs 2.x; a dependency of kafka_2.13 would bring 1.7
DATA="${CONVEYOR_KAFKA_DATA:-/var/lib/conveyor-kafka}"
CACHE="${CONVEYOR_KAFKA_CACHE:-/var/cache/conveyor/kafka}"
LIBS="$CACHE/$VERSION/libs"
BROKER_LOG="${CONVEYOR_KAFKA_LOG:-/var/log/conveyor-kafka.log}"
PYTHON="${CONVEYOR_PYTHON:-$ROOT/.venv/bin/python}"
CONFIG="$DATA/server.properties"
PIDFILE="$DATA/broker.pid"
STARTED=$SECONDS

# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

[[ "$PORT" =~ ^[0-9]+$ ]] || fail "CONVEYOR_KAFKA_PORT must be a port number, got '$PORT'"
[[ -x "$PYTHON" ]] || fail "no Python at $PYTHON (run 'make bootstrap' first, or set CONVEYOR_PYTHON)"

# The broker answers when a client gets metadata naming at least one broker: the port alone opens before
# the broker has registered with its controller and can serve requests.
broker_answers() {
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null || return 1
    "$PYTHON" - "127.0.0.1:$PORT" <<'EOF' >/dev/null 2>&1
import asyncio, sys
from aiokafka.admin import AIOKafkaAdminClient

async def main() -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=sys.argv[1], request_timeout_ms=3000)
    await asyncio.wait_for(admin.start(), 5)
    try:
        cluster = await asyncio.wait_for(admin.describe_cluster(), 5)
        assert cluster["brokers"], "no broker registered yet"
        await asyncio.wait_for(admin.list_topics(), 5)
    finally:
        await admin.close()

asyncio.run(main())
EOF
}

# Java 17 and Maven: Debian's packages, installed when missing.
install_packages() {
    local missing=()
    command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
    command -v mvn >/dev/null || missing+=(maven)
    [[ ${#missing[@]} -eq 0 ]] && return
    [[ $(id -u) -eq 0 ]] || fail "${missing[*]} missing, and installing them needs root"
    apt_install "${missing[@]}"
}

check_java() {
    local major
    major=$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')
    [[ "${major:-0}" -ge 17 ]] || fail "Kafka $VERSION needs Java 17 or newer, java here is '${major:-unknown}'"
}

# The throw-away project whose dependencies are the broker's class path; the jars are fetched again when it changes.
pom() {
    cat <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.conveyor</groupId>
  <artifactId>kafka-broker-jars</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$VERSION</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId><version>$SLF4J_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>$LOG4J_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j2-impl</artifactId><version>$LOG4J_VERSION</version></dependency>
  </dependencies>
</project>
EOF
}

install_jars() {
    if [[ -f "$LIBS/pom.xml" ]] && [[ "$(cat "$LIBS/pom.xml")" == "$(pom)" ]]; then
        say "using cached jars in $LIBS"
        return
    fi
    local work
    work=$(mktemp -d "${TMPDIR:-/tmp}/conveyor-kafka-pom.XXXXXX")
    pom >"$work/pom.xml"
    say "fetching org.apache.kafka:kafka_2.13:$VERSION and its dependencies with mvn into $LIBS"
    rm -rf "$LIBS"
    mkdir -p "$LIBS"
    # -U: a download that failed once (network down) is tried again rather than remembered as missing.
    if ! mvn -B -q -U -Dstyle.color=never -f "$work/pom.xml" -Dmaven.repo.local="$CACHE/m2" \
        dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$LIBS" >"$work/mvn.log" 2>&1; then
        sed 's/\x1b\[[0-9;]*m//g' "$work/mvn.log" | grep -m 1 -e '\[ERROR\] Failed' >&2 || tail -n 30 "$work/mvn.log" >&2
        rm -rf "$LIBS"
        fail "mvn could not fetch kafka_2.13:$VERSION (the reason above; full log $work/mvn.log)"
    fi
    ls "$LIBS"/kafka_2.13-*.jar >/dev/null 2>&1 || fail "mvn finished but $LIBS holds no kafka_2.13 jar"
    mv "$work/pom.xml" "$LIBS/pom.xml"  # last: marks the jars complete
    rm -rf "$work"
    say "fetched $(find "$LIBS" -name '*.jar' | wc -l) jars in $((SECONDS - STARTED))s"
}

write_config() {
    mkdir -p "$DATA/logs"
    cat >"$CONFIG" <<EOF
# Written by Conveyor's scripts/kafka.sh: one node that is both broker and controller, on 127.0.0.1 only.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DATA/logs
num.partitions=1
default.replication.factor=1
auto.create.topics.enable=false
# One node: internal topics have one replica, and few partitions so that they are created quickly.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
EOF
    cat >"$DATA/log4j2.properties" <<'EOF'
status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = out
logger.kafka.name = kafka
logger.kafka.level = WARN
logger.apache.name = org.apache.kafka
logger.apache.level = WARN
logger.started.name = kafka.server.KafkaRaftServer
logger.started.level = INFO
EOF
}

# The storage tool's main class moved between releases: try the names it has had.
storage_tool() {
    local class output
    for class in kafka.tools.StorageTool org.apache.kafka.tools.StorageTool; do
        if output=$(java -Dlog4j2.configurationFile="$DATA/log4j2.properties" -cp "$LIBS/*" "$class" "$@" 2>&1); then
            printf '%s\n' "$output"
            return 0
        fi
        grep -q "Could not find or load main class" <<<"$output" || { printf '%s\n' "$output" >&2; return 1; }
    done
    fail "no StorageTool main class in the jars of Kafka $VERSION"
}

format_storage() {
    if [[ -f "$DATA/logs/meta.properties" ]]; then
        say "storage in $DATA/logs is formatted"
        return
    fi
    local cluster
    cluster=$(storage_tool random-uuid | tail -n 1) || fail "StorageTool random-uuid failed"
    storage_tool format --cluster-id "$cluster" --config "$CONFIG" >/dev/null \
        || fail "StorageTool format of $DATA/logs failed (its output above)"
    say "formatted $DATA/logs for cluster $cluster"
}

running_pid() {
    local pid
    [[ -f "$PIDFILE" ]] && pid=$(cat "$PIDFILE") && grep -qa kafka.Kafka "/proc/$pid/cmdline" 2>/dev/null \
        && printf '%s' "$pid"
}

start_broker() {
    local pid
    if pid=$(running_pid); then
        say "broker process $pid is already running; waiting for it to answer"
    else
        say "starting Kafka $VERSION on 127.0.0.1:$PORT (log: $BROKER_LOG)"
        mkdir -p "$(dirname "$BROKER_LOG")"
        setsid nohup java -Xms256m -Xmx1g -XX:+UseG1GC -Djava.awt.headless=true \
            -Dlog4j2.configurationFile="$DATA/log4j2.properties" \
            -cp "$LIBS/*" kafka.Kafka "$CONFIG" >>"$BROKER_LOG" 2>&1 </dev/null &
        pid=$!
        printf '%s\n' "$pid" >"$PIDFILE"
    fi
    for _ in $(seq 1 120); do
        broker_answers && return
        kill -0 "$pid" 2>/dev/null || { tail -n 30 "$BROKER_LOG" >&2; fail "the broker exited (its log above)"; }
        sleep 0.5
    done
    tail -n 30 "$BROKER_LOG" >&2
    fail "the broker (pid $pid) did not answer on 127.0.0.1:$PORT within 60s (its log above)"
}

if broker_answers; then
    say "a broker answers on 127.0.0.1:$PORT"
    exit 0
fi
install_packages
check_java
install_jars
write_config
format_storage
start_broker
say "ready: Kafka $VERSION answers on 127.0.0.1:$PORT ($((SECONDS - STARTED))s)"
