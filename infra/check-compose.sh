#!/usr/bin/env bash
# infra/check-compose.sh — checks every compose file of the repository
# without a Docker engine (none runs on our machines) and without the network
# beyond PyPI:
#   1. each file against the Compose Specification's JSON schema, vendored in
#      infra/compose-spec/ (the compose-spec project's schema/compose-spec.json;
#      its commit and licence are recorded there): docker-compose.dev.yml
#      alone, every other compose file (the overlays, e.g.
#      infra/observability/docker-compose.observability.yml) alone, and each
#      overlay merged onto docker-compose.dev.yml as compose merges them
#      (mappings merged key by key, environment by variable, sequences
#      appended, command/entrypoint/healthcheck test replaced);
#   2. against what Confab requires of it: only the gateway and
#      dashboard-proxy publish ports (an overlay may publish the services it
#      adds, on 127.0.0.1 only), and every secret comes from the environment
#      with ${VAR:?} (no default) (DESIGN §5); every URL in an environment that
#      names a host without a dot names a service of the file; and for the bus
#      (DESIGN §15): CONFAB__BUS__URL only on binaries that read [bus], on
#      every instance of a binary that runs as several services, its server
#      depended on with condition service_healthy, and each instance after a
#      binary's first depends on an earlier one being healthy (the first runs
#      the migrations; two on a fresh database race);
#   3. that every service built from the repository matches what its binary
#      reads: the build arg SERVICE names a binary of the workspace
#      (services/<binary>/ with a config/default.toml) and every build arg is
#      an ARG of the Dockerfile; each CONFAB__SECTION__KEY of its environment
#      names a key of services/<binary>/config/default.toml (or one that file
#      documents by its variable's name, as CONFAB__BUS__URL), and the
#      unprefixed ones are DATABASE_URL (a binary with [database]), PORT (one
#      with [server] port), OTEL_EXPORTER_OTLP_ENDPOINT and RUST_LOG; it listens
#      on 0.0.0.0 (its environment or the Dockerfile's ENV); the ports it
#      publishes, exposes and healthchecks, and the ports other services' URLs
#      name for it, are ports its config listens on; an OTLP endpoint set on
#      one service is set on all;
#   4. the observability overlay's own files: images pinned to full versions
#      (no `latest`); Prometheus (infra/observability/prometheus/
#      prometheus.yml) scrapes every Confab service of the merged file on the
#      port it listens on, and the gateway with the service token from a
#      compose secret; every metric the Grafana dashboards query is one the
#      code records (metrics::counter!/gauge!/histogram!); every datasource
#      they name is provisioned.
# Before the real files, a self-test plants one mistake at a time into copies
# of them and fails unless the checks catch each.
# Needs python3 with venv; PyYAML and jsonschema are pinned and installed
# into a throwaway venv from PyPI. Exit 0 when every file passes.
#
#   bash infra/check-compose.sh [BASE_FILE]   (default: docker-compose.dev.yml)
set -euo pipefail

PY_PACKAGES="PyYAML==6.0.2 jsonschema==4.23.0"
# The vendored schema, as recorded in infra/compose-spec/README.md.
SCHEMA_SHA256=1f91e091f16b2dd50ab8860e02bb391d22df553d91c145eacedb1b6eff9c3f0e

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
base=${1:-$repo/docker-compose.dev.yml}
schema=$repo/infra/compose-spec/compose-spec.json
echo "$SCHEMA_SHA256  $schema" | sha256sum -c --quiet -

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
# shellcheck disable=SC2086 # one word per package
"$work/venv/bin/python" -m pip install --disable-pip-version-check --no-input -q $PY_PACKAGES

"$work/venv/bin/python" - "$repo" "$base" "$schema" <<'PY'
import copy
import json
import os
import re
import sys
import tomllib

import jsonschema
import yaml

repo, base_path, schema_path = sys.argv[1], os.path.abspath(sys.argv[2]), sys.argv[3]
rel = lambda p: os.path.relpath(p, repo)

with open(schema_path) as f:
    SCHEMA = json.load(f)
# The validator of the draft the schema declares (draft-07 today; compose-go's
# newer copy declares 2020-12), by a URL jsonschema may not know it by.
DRAFTS = {"draft-07": jsonschema.Draft7Validator, "2019-09": jsonschema.Draft201909Validator,
          "2020-12": jsonschema.Draft202012Validator}
VALIDATOR = next(cls for draft, cls in DRAFTS.items() if draft in SCHEMA["$schema"])(SCHEMA)

def load_yaml(path):
    with open(path) as f:
        return yaml.safe_load(f)

# --- what the code reads --------------------------------------------------------

BINARIES = {}  # binary -> (parsed default.toml, its text)
for name in sorted(os.listdir(f"{repo}/services")):
    cfg = f"{repo}/services/{name}/config/default.toml"
    if os.path.isfile(f"{repo}/services/{name}/Cargo.toml") and os.path.isfile(cfg):
        with open(cfg, "rb") as f:
            text = f.read()
        BINARIES[name] = (tomllib.loads(text.decode()), text.decode())

FIELD = re.compile(r"\bpub\s+(?:r#)?([a-z_][a-z0-9_]*)\s*:")
def fields(binary):
    """Field names of the settings structs a binary may read: every `pub name:`
    of its sources and of crates/kit (the shared [server], [telemetry], [bus])."""
    names = set()
    for top in (f"{repo}/services/{binary}/src", f"{repo}/crates/kit/src"):
        for root, _, files in os.walk(top):
            for file in files:
                if file.endswith(".rs"):
                    with open(os.path.join(root, file), encoding="utf-8", errors="replace") as f:
                        names.update(FIELD.findall(f.read()))
    return names
FIELDS = {binary: fields(binary) for binary in BINARIES}

def dockerfile(path):
    """The ARGs and the CONFAB__ ENV settings of a Dockerfile."""
    args, env = set(), {}
    with open(path) as f:
        lines = f.read().replace("\\\n", " ").splitlines()
    for line in lines:
        words = line.split()
        if len(words) >= 2 and words[0].upper() == "ARG":
            args.add(words[1].split("=", 1)[0])
        if len(words) >= 2 and words[0].upper() == "ENV":
            for word in words[1:]:
                if "=" in word:
                    key, value = word.split("=", 1)
                    env[key] = value
    return args, env

METRIC_CALL = re.compile(r'\b(counter|gauge|histogram)!\(\s*"([a-zA-Z_:][a-zA-Z0-9_:]*)"')
def code_metrics():
    names = {"up"}  # Prometheus's own, per target
    for top in ("services", "crates"):
        for root, dirs, files in os.walk(f"{repo}/{top}"):
            dirs[:] = [d for d in dirs if d not in ("target", "node_modules")]
            for file in files:
                if file.endswith(".rs"):
                    with open(os.path.join(root, file), encoding="utf-8", errors="replace") as f:
                        for kind, name in METRIC_CALL.findall(f.read()):
                            names.add(name)
                            if kind == "histogram":
                                names.update(f"{name}_{s}" for s in ("bucket", "sum", "count"))
    return names
METRICS = code_metrics()

UNPREFIXED = {"DATABASE_URL", "PORT", "OTEL_EXPORTER_OTLP_ENDPOINT", "RUST_LOG"}

# --- compose helpers --------------------------------------------------------------

def environment(service):
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return env

def depends(service):
    deps = service.get("depends_on") or {}
    return {name: "service_started" for name in deps} if isinstance(deps, list) else {
        name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}

def normalized(doc):
    """The document with every environment a mapping (compose merges them so)."""
    doc = copy.deepcopy(doc)
    for service in (doc.get("services") or {}).values():
        if isinstance(service, dict) and "environment" in service:
            service["environment"] = environment(service)
    return doc

REPLACED = {"command", "entrypoint", "test"}
def merge(base, over, key=None):
    """Compose's merge of an overlay onto a file (compose-spec 13-merge.md)."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = merge(base[k], v, k) if k in base else copy.deepcopy(v)
        return out
    if isinstance(base, list) and isinstance(over, list) and key not in REPLACED:
        return base + [x for x in over if x not in base]
    return copy.deepcopy(over)

def binary_of(service):
    return ((service.get("build") or {}).get("args") or {}).get("SERVICE")

def port_of_mapping(entry):
    """The container port of a `ports`/`expose` entry."""
    if isinstance(entry, dict):
        return str(entry.get("target"))
    return str(entry).rsplit(":", 1)[-1].split("/")[0]

def host_ip_of_mapping(entry):
    if isinstance(entry, dict):
        return entry.get("host_ip")
    parts = str(entry).split(":")
    return parts[0] if len(parts) == 3 else None

# scheme://[user[:password]@]host[:port]…, several comma-separated (the
# gateway's instances). A host with a dot (or an IP) is outside the file.
URL = re.compile(r"^[a-z][a-z0-9+.-]*://(?:[^@/,]*@)?([A-Za-z0-9_-]+)(?::(\d+))?(?=[:/]|$)")

def listen_ports(binary, env):
    """The ports a binary's config listens on, PORT applied."""
    cfg = BINARIES[binary][0]
    ports = set()
    if isinstance(cfg.get("server"), dict) and "port" in cfg["server"]:
        ports.add(str(env.get("PORT") or cfg["server"]["port"]))
    for agent in (cfg.get("agents") or {}).values():
        if isinstance(agent, dict) and "port" in agent:
            ports.add(str(agent["port"]))
    return ports

def env_key_problem(binary, var):
    cfg, text = BINARIES[binary]
    if var in UNPREFIXED:
        if var == "DATABASE_URL" and "database" not in cfg:
            return f"DATABASE_URL is set, but {binary} has no [database] to read it into"
        if var == "PORT" and "port" not in (cfg.get("server") or {}):
            return f"PORT is set, but {binary} has no [server] port to read it into"
        return None
    if not var.startswith("CONFAB__"):
        return (f"{var} is read by no Confab binary (CONFAB__SECTION__KEY or one of "
                f"{', '.join(sorted(UNPREFIXED))})")
    # The key itself in default.toml; or its table there and the key an
    # optional field (serde default) of the binary's settings, as [bus] url
    # or [agents.<id>] public_url.
    node, parts = cfg, var[len("CONFAB__"):].lower().split("__")
    for position, part in enumerate(parts):
        if not isinstance(node, dict):
            node = None
            break
        if part not in node:
            last = position == len(parts) - 1
            node = "optional" if last and position > 0 and part in FIELDS[binary] else None
            break
        node = node[part]
    if node is None and not re.search(rf"\b{re.escape(var)}\b", text):
        return (f"{var} names no key of services/{binary}/config/default.toml "
                f"({var[len('CONFAB__'):].lower().replace('__', '.')}), so {binary} ignores it")
    return None

# --- the checks ---------------------------------------------------------------------

def schema_problems(doc):
    out = []
    for error in VALIDATOR.iter_errors(doc):
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        out.append(f"schema: {where}: {error.message}")
    return out

SECRET_NAME = re.compile(r"(TOKEN|KEY|PASSWORD|SECRET)$")
def secret_problems(doc):
    out, found = [], []
    def secrets(env, where):
        for name, value in (env or {}).items():
            if isinstance(value, str) and (SECRET_NAME.search(name) or "@" in value):
                yield where, name, value
    for name, service in (doc.get("services") or {}).items():
        found += secrets(environment(service), name)
    for key, value in doc.items():
        if key.startswith("x-") and isinstance(value, dict):
            found += secrets(value, key)
    for where, name, value in found:
        refs = re.findall(r"\$\{([^}]*)\}", value)
        if not refs:
            out.append(f"{where}: {name} has a secret written into the file; take it from ${{VAR:?}}")
        for ref in refs:
            if not re.fullmatch(r"[A-Z0-9_]+:\?.*", ref):
                out.append(f"{where}: {name} uses ${{{ref}}}; a secret needs ${{VAR:?message}}, no default")
    return out, len(found)

def top_secret_problems(doc, required_vars):
    """Top-level secrets from the environment: from a variable the file requires."""
    out = []
    for name, spec in (doc.get("secrets") or {}).items():
        spec = spec or {}
        if "file" in spec:
            out.append(f"secrets: {name} comes from a file; take it from the environment")
        var = spec.get("environment")
        if var and var not in required_vars:
            out.append(f"secrets: {name} comes from ${var}, which the file nowhere requires "
                       f"with ${{{var}:?}}: compose would hand over an empty secret")
    return out

def required_vars(doc):
    return set(re.findall(r"\$\{([A-Z0-9_]+):\?", json.dumps(doc)))

def url_problems(doc):
    out = []
    services = doc.get("services") or {}
    for name, service in services.items():
        for var, value in environment(service).items():
            for url in str(value).split(","):
                match = URL.match(url.strip())
                if match and match.group(1) not in services and match.group(1) != "localhost":
                    out.append(f"{name}: {var} names '{match.group(1)}', which is no service of this file")
    return out

def bus_problems(doc):
    out, bus_users = [], 0
    services = doc.get("services") or {}
    instances = {}
    for name, service in services.items():
        binary = binary_of(service)
        if binary in BINARIES:
            instances.setdefault(binary, []).append(name)
    for binary, names in instances.items():
        reads_bus = "bus" in BINARIES[binary][0]
        for position, name in enumerate(names):
            service = services[name]
            bus_url = environment(service).get("CONFAB__BUS__URL")
            if bus_url and not reads_bus:
                out.append(f"{name}: CONFAB__BUS__URL is set, but {binary} has no [bus] to read it into")
            if len(names) > 1 and not bus_url:
                out.append(f"{name}: {binary} runs as {', '.join(names)}, so each needs CONFAB__BUS__URL "
                           "(instances in separate processes meet only on NATS)")
            if bus_url:
                bus_users += 1
                match = URL.match(str(bus_url))
                server = match.group(1) if match else None
                if server in services and depends(service).get(server) != "service_healthy":
                    out.append(f"{name}: its bus is the service {server}; depend on it with "
                               "condition: service_healthy (a service does not start without its bus)")
            if position > 0 and not any(depends(service).get(earlier) == "service_healthy"
                                        for earlier in names[:position]):
                out.append(f"{name}: start it after {names[0]} is healthy (depends_on condition: "
                           "service_healthy): the first instance runs the migrations, and two "
                           "instances running them at once on a fresh database fail")
    several = sorted(f"{b} x{len(n)}" for b, n in instances.items() if len(n) > 1)
    return out, bus_users, several

def binary_problems(doc, path):
    """Build args, environment and ports of the services built from the repo."""
    out = []
    services = doc.get("services") or {}
    listening = {}  # service -> ports
    for name, service in services.items():
        build = service.get("build")
        if build is None:
            continue
        if not isinstance(build, dict):
            build = {"context": build}
        context = os.path.normpath(os.path.join(os.path.dirname(path), build.get("context", ".")))
        dfile = os.path.join(context, build.get("dockerfile", "Dockerfile"))
        if not os.path.isfile(dfile):
            out.append(f"{name}: its build names {rel(dfile)}, which does not exist")
            continue
        dargs, denv = dockerfile(dfile)
        args = build.get("args") or {}
        if isinstance(args, list):
            args = dict(a.split("=", 1) if "=" in a else (a, "") for a in args)
        for arg in args:
            if arg not in dargs:
                out.append(f"{name}: build arg {arg} is no ARG of {rel(dfile)}")
        binary = args.get("SERVICE")
        if binary not in BINARIES:
            out.append(f"{name}: build arg SERVICE={binary} names no binary of the workspace "
                       f"(services/<binary>/ with config/default.toml: {', '.join(BINARIES)})")
            continue
        env = environment(service)
        for var in env:
            problem = env_key_problem(binary, var)
            if problem:
                out.append(f"{name}: {problem}")
        cfg = BINARIES[binary][0]
        host_var = "CONFAB__SERVER__HOST" if "host" in (cfg.get("server") or {}) else "CONFAB__HOST"
        host = env.get(host_var, denv.get(host_var))
        if host != "0.0.0.0":
            out.append(f"{name}: {binary} listens on {host or 'its default host'}, not 0.0.0.0 "
                       f"({host_var}): nothing outside its container reaches it")
        ports = listen_ports(binary, env)
        listening[name] = ports
        for kind in ("ports", "expose"):
            for entry in service.get(kind) or []:
                port = port_of_mapping(entry)
                if port not in ports:
                    out.append(f"{name}: {kind} names container port {port}, but {binary} "
                               f"listens on {', '.join(sorted(ports))}")
        test = (service.get("healthcheck") or {}).get("test") or []
        test = " ".join(test) if isinstance(test, list) else str(test)
        for port in re.findall(r"//(?:127\.0\.0\.1|localhost|0\.0\.0\.0):(\d+)", test):
            if port not in ports:
                out.append(f"{name}: its healthcheck asks port {port}, but {binary} "
                           f"listens on {', '.join(sorted(ports))}")
    # The ports other services' URLs name for these services.
    for name, service in services.items():
        for var, value in environment(service).items():
            for url in str(value).split(","):
                match = URL.match(url.strip())
                if match and match.group(1) in listening and match.group(2):
                    target, port = match.group(1), match.group(2)
                    if port not in listening[target]:
                        out.append(f"{name}: {var} names {target}:{port}, but {target} listens on "
                                   f"{', '.join(sorted(listening[target]))}")
    otlp = {name for name in listening if environment(services[name]).get("OTEL_EXPORTER_OTLP_ENDPOINT")}
    if otlp and otlp != set(listening):
        out.append(f"OTEL_EXPORTER_OTLP_ENDPOINT is set on {', '.join(sorted(otlp))} but not on "
                   f"{', '.join(sorted(set(listening) - otlp))}: a trace would miss their spans")
    return out, listening

def published_problems(doc, base_doc):
    out = []
    services = doc.get("services") or {}
    published = sorted(n for n, s in services.items() if s.get("ports"))
    base_services = (base_doc or doc).get("services") or {}
    for name in published:
        if name in ("gateway", "dashboard-proxy"):
            continue
        if base_doc is None or name in base_services:
            out.append(f"{name}: only gateway and dashboard-proxy may publish ports (DESIGN §5)")
            continue
        for entry in services[name]["ports"]:
            if host_ip_of_mapping(entry) != "127.0.0.1":
                out.append(f"{name}: an overlay's service publishes on 127.0.0.1 only, not {entry}")
    return out, published

PINNED = re.compile(r"^[^:@]+(:[^:@]*\d+\.\d+[^:@]*)(@sha256:[0-9a-f]{64})?$")
def image_problems(doc, base_doc):
    out = []
    base_services = base_doc.get("services") or {}
    for name, service in (doc.get("services") or {}).items():
        image = service.get("image")
        if name in base_services or not image or service.get("build"):
            continue
        if not PINNED.match(image) or ":latest" in image:
            out.append(f"{name}: image {image} is not pinned to a full version (repo:X.Y.Z)")
    return out

PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool",
                "and", "or", "unless", "offset", "inf", "nan"}
def metric_names(expr):
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)           # strings
    expr = re.sub(r"\{[^}]*\}", "", expr)                     # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)                    # ranges
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"\$\{?\w+\}?", "", expr)                   # Grafana variables
    names = []
    for match in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr):
        after = expr[match.end():].lstrip()
        word = match.group(0)
        if after.startswith("(") or word.lower() in PROMQL_WORDS:
            continue
        if re.match(r"\d", expr[match.start() - 1:match.start()] or "x"):
            continue  # the e of 1e9
        names.append(word)
    return names

def dashboard_problems(dashboards, datasource_uids):
    out, queries = [], 0
    for path, dash in dashboards.items():
        def panels(items):
            for panel in items:
                yield panel
                yield from panels(panel.get("panels") or [])
        exprs = [(p.get("title"), t.get("expr"), (t.get("datasource") or p.get("datasource") or {}))
                 for p in panels(dash.get("panels") or []) for t in p.get("targets") or []]
        exprs += [("variable " + v.get("name", ""), (v.get("query") or {}).get("query") if isinstance(
                      v.get("query"), dict) else v.get("query"), v.get("datasource") or {})
                  for v in (dash.get("templating") or {}).get("list") or [] if v.get("type") == "query"]
        for title, expr, ds in exprs:
            uid = ds.get("uid") if isinstance(ds, dict) else None
            if uid and uid not in datasource_uids:
                out.append(f"{rel(path)}: {title}: datasource {uid} is not provisioned")
            if not expr:
                continue
            queries += 1
            expr = re.sub(r"^label_values\((.*),\s*\w+\)$", r"\1", expr)
            for name in metric_names(expr):
                if name not in METRICS:
                    out.append(f"{rel(path)}: {title}: queries {name}, which no service records "
                               "(metrics::counter!/gauge!/histogram! in services/ and crates/)")
    return out, queries

def prometheus_problems(prom, doc, listening, prom_service="prometheus"):
    out, scraped = [], set()
    services = doc.get("services") or {}
    mounted = set(services.get(prom_service, {}).get("secrets") or [])
    mounted = {s if isinstance(s, str) else s.get("source") for s in mounted}
    for job in prom.get("scrape_configs") or []:
        targets = [t for sc in job.get("static_configs") or [] for t in sc.get("targets") or []]
        for target in targets:
            host, _, port = target.rpartition(":")
            if host == "localhost":
                continue
            if host not in listening:
                out.append(f"prometheus: job {job.get('job_name')} scrapes {target}, which is no "
                           "Confab service of the file")
                continue
            if port not in listening[host]:
                out.append(f"prometheus: job {job.get('job_name')} scrapes {target}, but {host} "
                           f"listens on {', '.join(sorted(listening[host]))}")
            scraped.add(host)
            if binary_of(services[host]) == "gateway":
                files = ((job.get("http_headers") or {}).get("X-Service-Token") or {}).get("files") or []
                if not any(f.startswith("/run/secrets/") and f[len("/run/secrets/"):] in mounted for f in files):
                    out.append(f"prometheus: job {job.get('job_name')} scrapes the gateway without "
                               "X-Service-Token from a compose secret mounted into prometheus "
                               "(its /metrics answers 401)")
    for name in sorted(set(listening) - scraped):
        out.append(f"prometheus: no job scrapes {name}")
    return out

def observability_files():
    base = f"{repo}/infra/observability"
    prom = load_yaml(f"{base}/prometheus/prometheus.yml")
    dashboards = {}
    ddir = f"{base}/grafana/dashboards"
    for file in sorted(os.listdir(ddir)):
        if file.endswith(".json"):
            with open(f"{ddir}/{file}") as f:
                dashboards[f"{ddir}/{file}"] = json.load(f)
    uids = set()
    pdir = f"{base}/grafana/provisioning/datasources"
    for file in sorted(os.listdir(pdir)):
        if file.endswith((".yml", ".yaml")):
            uids |= {d.get("uid") for d in load_yaml(f"{pdir}/{file}").get("datasources") or []}
    return prom, dashboards, uids

# --- a file, an overlay, the merge ------------------------------------------------------

def check_base(doc, path):
    problems = schema_problems(doc)
    p, published = published_problems(doc, None); problems += p
    p, secrets = secret_problems(doc); problems += p
    problems += top_secret_problems(doc, required_vars(doc))
    problems += url_problems(doc)
    p, bus_users, several = bus_problems(doc); problems += p
    p, listening = binary_problems(doc, path); problems += p
    summary = (f"valid against the Compose Specification schema; publishes only {published}; "
               f"{secrets} secret-bearing settings all from ${{VAR:?}}; service URLs name services "
               f"of the file; {bus_users} services on the bus, several instances of "
               f"{', '.join(several) or 'none'}; {len(listening)} Confab services' build args, "
               "environment and ports match their binaries")
    return problems, summary

def check_overlay(overlay, base_doc, base_path, obs=None):
    """The overlay alone, then merged onto the base file."""
    problems = [f"(alone) {p}" for p in schema_problems(overlay)]
    p, _ = secret_problems(overlay); problems += [f"(alone) {x}" for x in p]
    for name in overlay.get("services") or {}:
        service = overlay["services"][name]
        if name not in (base_doc.get("services") or {}) and not (service.get("image") or service.get("build")):
            problems.append(f"(alone) {name}: neither in {rel(base_path)} nor given an image or build")
    merged = merge(normalized(base_doc), normalized(overlay))
    m, _ = check_base_like(merged, base_doc, base_path)
    problems += [f"(merged) {x}" for x in m]
    summary = ""
    if obs is not None:
        prom, dashboards, uids = obs
        _, listening = binary_problems(merged, base_path)
        problems += [f"(merged) {x}" for x in prometheus_problems(prom, merged, listening)]
        p, queries = dashboard_problems(dashboards, uids); problems += p
        summary = (f"; Prometheus scrapes all {len(listening)} Confab services; {queries} dashboard "
                   f"queries name metrics the code records")
    return problems, merged, summary

def check_base_like(merged, base_doc, path):
    problems = schema_problems(merged)
    p, published = published_problems(merged, base_doc); problems += p
    p, _ = secret_problems(merged); problems += p
    problems += top_secret_problems(merged, required_vars(merged))
    problems += url_problems(merged)
    p, _, _ = bus_problems(merged); problems += p
    p, _ = binary_problems(merged, path); problems += p
    problems += image_problems(merged, base_doc)
    return problems, published

# --- the compose files of the repository -------------------------------------------------

def compose_files():
    found = []
    for root, dirs, files in os.walk(repo):
        dirs[:] = [d for d in dirs if d not in (".git", "target", "node_modules", "data", "compose-spec")]
        for file in files:
            if re.fullmatch(r"(docker-)?compose(\.[\w-]+)*\.ya?ml", file):
                found.append(os.path.join(root, file))
    return sorted(found)

OBS_OVERLAY = f"{repo}/infra/observability/docker-compose.observability.yml"

# --- self-test: each planted mistake must be caught -----------------------------------------

def self_test(base_doc, overlay, obs):
    def svc(doc, name):
        return doc["services"][name]
    def env(doc, name):
        s = svc(doc, name)
        s["environment"] = environment(s)
        return s["environment"]
    base_cases = [
        ("a CONFAB__ key the binary lacks", "CONFAB__AGENTS__MATH__URLL",
         lambda d: env(d, "chat-service-1").update(CONFAB__AGENTS__MATH__URLL="http://demo-agents:8101")),
        ("a SERVICE that is no binary", "gatewy",
         lambda d: svc(d, "gateway")["build"]["args"].update(SERVICE="gatewy")),
        ("a build arg the Dockerfile lacks", "RUST_VERSION",
         lambda d: svc(d, "gateway")["build"]["args"].update(RUST_VERSION="1.80")),
        ("a healthcheck on the wrong port", "port 8004",
         lambda d: svc(d, "chat-service-1").update(healthcheck={"test": [
             "CMD", "curl", "-fsS", "http://127.0.0.1:8004/ready"]})),
        ("a published port the binary does not listen on", "9051",
         lambda d: svc(d, "gateway").update(ports=["9051:9051"])),
        ("a URL naming the wrong port of a service", "llm-proxy-service-1:8007",
         lambda d: env(d, "demo-agents").update(CONFAB__LLM__BASE_URL="http://llm-proxy-service-1:8007")),
        ("DATABASE_URL on a binary without a database", "DATABASE_URL",
         lambda d: env(d, "dashboard-proxy").update(DATABASE_URL="postgres://x@postgres/y")),
        ("a key whose table the binary lacks", "auth.service_token",
         lambda d: env(d, "dashboard-proxy").update(CONFAB__AUTH__SERVICE_TOKEN="${CONFAB_SERVICE_TOKEN:?x}")),
        ("a misspelled optional key", "public_ur",
         lambda d: env(d, "demo-agents").update(CONFAB__AGENTS__MATH__PUBLIC_UR="http://demo-agents:8101")),
        ("an unprefixed variable nobody reads", "CONFAB_BUS_URL",
         lambda d: env(d, "gateway").update(CONFAB_BUS_URL="nats://nats:4222")),
        ("a schema violation", "schema:",
         lambda d: svc(d, "gateway").update(ports="9050:9050")),
        ("a secret with a default", "no default",
         lambda d: env(d, "gateway").update(CONFAB__AUTH__SERVICE_TOKEN="${CONFAB_SERVICE_TOKEN:-x}")),
        ("a third-party service publishing in the base file", "only gateway and dashboard-proxy",
         lambda d: svc(d, "nats").update(ports=["4222:4222"])),
    ]
    overlay_cases = [
        ("an unpinned image", "jaegertracing/jaeger:latest",
         lambda o, obs: svc(o, "jaeger").update(image="jaegertracing/jaeger:latest")),
        ("an image without a tag", "grafana/grafana is not pinned",
         lambda o, obs: svc(o, "grafana").update(image="grafana/grafana")),
        ("a service without the OTLP endpoint", "OTEL_EXPORTER_OTLP_ENDPOINT is set on",
         lambda o, obs: svc(o, "demo-agents").update(environment={})),
        ("an OTLP endpoint naming no service", "'jaegr'",
         lambda o, obs: svc(o, "gateway").update(environment={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://jaegr:4318"})),
        ("an overlay service published on all interfaces", "127.0.0.1 only",
         lambda o, obs: svc(o, "grafana").update(ports=["3000:3000"])),
        ("a Grafana password with a default", "no default",
         lambda o, obs: env(o, "grafana").update(GF_SECURITY_ADMIN_PASSWORD="${GRAFANA_ADMIN_PASSWORD:-admin}")),
        ("an overlay key in the wrong place", "(alone) schema:",
         lambda o, obs: svc(o, "prometheus").update(secret=["confab_service_token"])),
        ("a scrape target on the wrong port", "chat-service-2:8004",
         lambda o, obs: obs[0]["scrape_configs"][1]["static_configs"][0]["targets"].__setitem__(1, "chat-service-2:8004")),
        ("a service Prometheus does not scrape", "no job scrapes dashboard-proxy",
         lambda o, obs: obs[0]["scrape_configs"].__setitem__(slice(None), [
             j for j in obs[0]["scrape_configs"] if j["job_name"] != "dashboard-proxy"])),
        ("the gateway scraped without the service token", "X-Service-Token",
         lambda o, obs: obs[0]["scrape_configs"][0].pop("http_headers")),
        ("a dashboard query naming a metric nobody records", "llm_proxy_tokenz_total",
         lambda o, obs: next(iter(obs[1].values()))["panels"][1]["targets"][0].update(
             expr="sum by (model) (rate(llm_proxy_tokenz_total[5m]))")),
        ("a datasource that is not provisioned", "datasource prometheus2",
         lambda o, obs: next(iter(obs[1].values()))["panels"][1]["targets"][0].update(
             datasource={"type": "prometheus", "uid": "prometheus2"})),
    ]
    failures = []
    for what, expect, plant in base_cases:
        doc = normalized(base_doc)
        plant(doc)
        problems, _ = check_base(doc, base_path)
        if not any(expect in p for p in problems):
            failures.append(f"self-test: {what} went unnoticed (expected '{expect}' in {problems})")
    for what, expect, plant in overlay_cases:
        o, obs2 = normalized(overlay), copy.deepcopy(obs)
        plant(o, obs2)
        problems, _, _ = check_overlay(o, base_doc, base_path, obs2)
        if not any(expect in p for p in problems):
            failures.append(f"self-test: {what} went unnoticed (expected '{expect}' in {problems})")
    return failures, len(base_cases) + len(overlay_cases)

# --- main -----------------------------------------------------------------------------------

base_doc = load_yaml(base_path)
files = compose_files()
overlays = [f for f in files if os.path.abspath(f) != base_path and
            os.path.abspath(f) != os.path.abspath(f"{repo}/docker-compose.dev.yml")]
obs = observability_files() if os.path.isfile(OBS_OVERLAY) else None

failed = False
if obs is not None:
    failures, cases = self_test(base_doc, load_yaml(OBS_OVERLAY), obs)
    for failure in failures:
        print(failure, file=sys.stderr)
    failed |= bool(failures)
    if not failures:
        print(f"self-test: all {cases} planted mistakes caught")

problems, summary = check_base(base_doc, base_path)
for problem in problems:
    print(f"{rel(base_path)}: {problem}", file=sys.stderr)
failed |= bool(problems)
if not problems:
    print(f"{rel(base_path)}: {summary}")

for path in overlays:
    overlay = load_yaml(path)
    is_obs = os.path.abspath(path) == OBS_OVERLAY
    problems, _, extra = check_overlay(overlay, base_doc, base_path, obs if is_obs else None)
    for problem in problems:
        print(f"{rel(path)}: {problem}", file=sys.stderr)
    failed |= bool(problems)
    if not problems:
        print(f"{rel(path)}: valid against the schema alone and merged onto {rel(base_path)}; "
              f"the merge passes the checks above; images pinned{extra}")

sys.exit(1 if failed else 0)
PY
