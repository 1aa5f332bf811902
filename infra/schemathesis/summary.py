"""What one schemathesis run did, from its NDJSON event stream
(`--report ndjson`): operations tested, test cases, the checks run (each
check's passes and failures) and the distinct failures, each with the
operation, the check, the response status and a curl line that reproduces
it. run.sh prints it after schemathesis' own summary, which counts
failures but not the checks that passed.

    python3 summary.py EVENTS.ndjson [NAME [FINDINGS.md]]

With FINDINGS.md, the distinct failures are written there too, as a
Markdown table (operation, check, status, message, reproduction).
"""

import base64
import json
import shlex
import sys
from collections import Counter


def reproduction(request: dict) -> str:
    """A curl command line for a recorded request (its token filtered)."""
    parts = ["curl", "-X", request.get("method", "GET")]
    for name, values in (request.get("headers") or {}).items():
        if name.lower() in ("authorization", "cookie"):
            values = ["[token]"]
        for value in values if isinstance(values, list) else [values]:
            parts += ["-H", f"{name}: {value}"]
    body = request.get("body")
    if isinstance(body, dict) and "$base64" in body:
        raw = base64.b64decode(body["$base64"])
        text = raw.decode("utf-8", errors="replace")
        parts += ["-d", text if len(text) <= 300 else text[:300] + "…"]
    elif isinstance(body, str):
        parts += ["-d", body if len(body) <= 300 else body[:300] + "…"]
    parts.append(request.get("uri", "?"))
    return " ".join(shlex.quote(part) for part in parts)


def body_of(response: dict) -> str:
    """The start of a recorded response's body, as text."""
    content = response.get("content")
    if isinstance(content, dict) and "$base64" in content:
        text = base64.b64decode(content["$base64"]).decode("utf-8", errors="replace")
    elif isinstance(content, str):
        text = content
    else:
        return ""
    text = " ".join(text.split())
    return text if len(text) <= 200 else text[:200] + "…"


def main() -> None:
    path = sys.argv[1]
    name = sys.argv[2] if len(sys.argv) > 2 else path
    markdown = sys.argv[3] if len(sys.argv) > 3 else None
    operations: dict = {}
    checks_by_case: dict = {}
    interactions: dict = {}
    cases: dict = {}
    tested: set = set()
    for line in open(path, encoding="utf-8"):
        event = json.loads(line)
        if "LoadingFinished" in event:
            operations = event["LoadingFinished"]["statistic"]["operations"]
        finished = event.get("ScenarioFinished")
        if not finished or not finished.get("recorder"):
            continue
        recorder = finished["recorder"]
        label = recorder.get("label") or ""
        # A stateful scenario's label names no one operation.
        if recorder.get("cases") and label.split(" ", 1)[0].isupper():
            tested.add(label)
        for case_id, checks in (recorder.get("checks") or {}).items():
            checks_by_case[case_id] = (recorder.get("label"), checks)
        interactions.update(recorder.get("interactions") or {})
        cases.update(recorder.get("cases") or {})

    runs = Counter()
    failed = Counter()
    distinct: dict = {}
    for case_id, (label, checks) in checks_by_case.items():
        for check in checks:
            runs[check["name"]] += 1
            if check["status"] != "failure":
                continue
            failed[check["name"]] += 1
            failure = (check.get("failure_info") or {}).get("failure") or {}
            interaction = interactions.get(case_id) or {}
            status = (interaction.get("response") or {}).get("status_code", "no response")
            key = (failure.get("operation") or label, failure.get("code") or check["name"], status)
            meta = ((cases.get(case_id) or {}).get("value") or {}).get("meta") or {}
            case = ((meta.get("phase") or {}).get("data") or {}).get("description") or ""
            distinct.setdefault(
                key,
                (check["name"], failure, interaction.get("request") or {}, interaction.get("response") or {}, case),
            )

    print(f"\n---- {name}: what ran ----")
    print(
        f"operations: {operations.get('selected', '?')} selected of {operations.get('total', '?')}, "
        f"{len(tested)} tested; test cases: {len(checks_by_case)}; "
        f"checks run: {sum(runs.values())}, failed: {sum(failed.values())}"
    )
    for check in sorted(runs):
        print(f"  {check:32} {runs[check]:6} run  {failed[check]:5} failed")
    rows = []
    for (operation, code, status), (check, failure, request, response, case) in sorted(
        distinct.items(), key=lambda item: tuple(map(str, item[0]))
    ):
        message = (failure.get("message") or failure.get("title") or "").strip().splitlines()
        answer = body_of(response)
        rows.append(
            (
                operation,
                f"{code} {check}",
                status,
                (message[0] if message else "")
                + (f" (case: {case})" if case else "")
                + (f" — answered {answer}" if answer else ""),
                reproduction(request) if request else "",
            )
        )
    if rows:
        print(f"distinct failures (operation, check, status): {len(rows)}")
        for operation, check, status, message, curl in rows:
            print(f"- {operation} — {check} — {status}: {message}")
            if curl:
                print(f"    {curl}")
    if markdown:
        with open(markdown, "w", encoding="utf-8") as out:
            out.write(f"## {name}: {len(rows)} distinct failures\n\n")
            out.write(f"{len(tested)} operations tested, {len(checks_by_case)} test cases, ")
            out.write(f"{sum(runs.values())} checks run, {sum(failed.values())} failed\n\n")
            if rows:
                out.write("| operation | check | status | message | reproduction |\n|---|---|---|---|---|\n")
                for row in rows:
                    cells = [str(cell).replace("|", "\\|") for cell in row]
                    cells[-1] = f"`{cells[-1]}`" if cells[-1] else ""
                    out.write("| " + " | ".join(cells) + " |\n")


if __name__ == "__main__":
    main()
