"""deploy/Dockerfile cannot be built here (no container engine): check its invariants by reading it."""

from __future__ import annotations

import json
import re

import chartlib

DOCKERFILE = chartlib.ROOT / "deploy" / "Dockerfile"


def instructions():
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def stages():
    result, current = [], None
    for word, rest in instructions():
        if word == "FROM":
            current = {"from": rest, "body": []}
            result.append(current)
        elif current is not None:
            current["body"].append((word, rest))
    return result


def test_final_stage_is_distroless_or_scratch():
    final = stages()[-1]
    image = final["from"].split()[0]
    assert image == "scratch" or image.startswith("gcr.io/distroless/static"), image
    assert not any(word == "RUN" for word, _ in final["body"]), "the final image has no shell to RUN with"


def test_final_stage_user_is_non_root():
    users = [rest for word, rest in stages()[-1]["body"] if word == "USER"]
    assert users, "the final stage must set USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, users[-1]
    assert uid == "65532"


def test_entrypoint_and_cmd_exec_form():
    body = stages()[-1]["body"]
    entry = [json.loads(rest) for word, rest in body if word == "ENTRYPOINT"]
    cmd = [json.loads(rest) for word, rest in body if word == "CMD"]
    assert entry == [["/pidone"]]
    assert cmd and cmd[-1][0] == "serve"
    assert cmd[-1][cmd[-1].index("--config") + 1] == "/etc/pidone/config.yaml"


def test_final_image_carries_both_binaries():
    copies = [rest for word, rest in stages()[-1]["body"] if word == "COPY"]
    binaries = [c for c in copies if c.split()[-1] in {"/pidone", "/pidone-init"}]
    assert {c.split()[-1] for c in binaries} == {"/pidone", "/pidone-init"}
    assert all(c.startswith("--from=builder ") for c in binaries)


def test_builder_builds_static_binaries():
    builder = stages()[0]
    assert builder["from"].endswith("AS builder")
    runs = " ".join(rest for word, rest in builder["body"] if word == "RUN")
    # pidone profile-guided: trained, then built with the counts (llvm-profdata from rustup).
    assert re.search(r"scripts/build-static\.sh --pgo /out$", runs)
    assert "rustup component add llvm-tools" in runs
    # The script builds both binaries static against glibc, pidone-init with its profile; the
    # instrumented build it trains is static too (the same flags, or the profile would not match).
    script = (chartlib.ROOT / "scripts" / "build-static.sh").read_text()
    assert 'rustflags="-C target-feature=+crt-static"' in script
    assert 'RUSTFLAGS="$rustflags"' in script
    train = (chartlib.ROOT / "scripts" / "train-profile.sh").read_text()
    assert 'RUSTFLAGS="-C target-feature=+crt-static -C profile-generate=' in train
    assert "--package pidone --bin pidone" in script
    init = (chartlib.ROOT / "scripts" / "build-init.sh").read_text()
    assert re.search(r'RUSTFLAGS="-C target-feature=\+crt-static" \\\n\s+cargo build --locked --profile release-init '
                     r'--package pidone-init', init)
    # The profile the build names exists.
    assert "[profile.release-init]" in (chartlib.ROOT / "Cargo.toml").read_text()


def test_chart_runs_the_image_entrypoint_binary():
    objs = chartlib.render()
    c = next(o for o in objs if o["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"][0]
    entry = [json.loads(rest) for word, rest in stages()[-1]["body"] if word == "ENTRYPOINT"][0]
    assert c["command"] == entry
