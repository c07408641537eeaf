"""Copies of isec objects made by other S3 tools, against Garage: which stay readable, which
lose their envelope (UploadPartCopy without the user metadata), that a scan reports those as
``stripped_isec`` rather than plaintext, and that ``Client.repair`` makes them readable.

The tools run as a user would run them: the AWS CLI v1 (``awscli`` from PyPI, in this venv),
``s3cmd`` (PyPI, in this venv) and ``rclone`` (Debian's package; scripts/test-python.sh
installs it). ``EXPECTED`` is what they were observed to do (README.md, "Copies made by
other tools"); a tool that changes its behaviour fails the test rather than the table going
stale."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

import isec
import isec.s3

MIB = 1 << 20
SIZES = {"small": 100 * 1024, "large": 9 * MIB}

# (tool, size) -> readable with isec after the copy. Observed against Garage 2.5.0 with
# awscli 1.x, s3cmd 2.4 and rclone 1.60.
EXPECTED: dict[tuple[str, str], bool] = {
    ("aws s3 cp", "small"): True,
    ("aws s3 cp", "large"): False,
    ("aws s3 mv", "small"): True,
    ("aws s3 mv", "large"): False,
    ("aws s3 sync", "small"): True,
    ("aws s3 sync", "large"): False,
    ("aws s3api copy-object", "small"): True,
    ("aws s3api copy-object", "large"): True,
    ("rclone copyto", "small"): True,
    ("rclone copyto", "large"): True,
    ("s3cmd cp", "small"): True,
    ("s3cmd cp", "large"): True,
}


def tool(name: str) -> str:
    """The tool's executable: this venv's (awscli, s3cmd) or the system's (rclone). Missing
    fails under CI=true, where scripts/test-python.sh installs them, and skips elsewhere."""
    venv = Path(sys.executable).parent / name
    found = str(venv) if venv.exists() else shutil.which(name)
    if found is None:
        msg = f"{name} is not installed (scripts/test-python.sh installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(f"NOT CHECKED: copies by other tools: {msg}")
    return found


class Tools:
    """The three tools, configured for the test server (path-style, its credentials and
    region), each through its own environment or config file in ``tmp``."""

    def __init__(self, env: dict[str, str], bucket: str, tmp: Path) -> None:
        self.bucket = bucket
        endpoint = env["ISEC_S3_ENDPOINT"]
        region = env.get("ISEC_S3_REGION", "garage")
        key, secret = env["ISEC_S3_ACCESS_KEY_ID"], env["ISEC_S3_SECRET_ACCESS_KEY"]
        self.aws_bin, self.rclone_bin, self.s3cmd_bin = tool("aws"), tool("rclone"), tool("s3cmd")
        aws_config = tmp / "aws-config"
        aws_config.write_text(f"[default]\nregion = {region}\ns3 =\n    addressing_style = path\n")
        self.endpoint = endpoint
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RCLONE_"))},
            "AWS_ACCESS_KEY_ID": key,
            "AWS_SECRET_ACCESS_KEY": secret,
            "AWS_DEFAULT_REGION": region,
            "AWS_CONFIG_FILE": str(aws_config),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "none"),
            "RCLONE_CONFIG": str(tmp / "rclone.conf"),
            "RCLONE_CONFIG_GARAGE_TYPE": "s3",
            "RCLONE_CONFIG_GARAGE_PROVIDER": "Other",
            "RCLONE_CONFIG_GARAGE_ENDPOINT": endpoint,
            "RCLONE_CONFIG_GARAGE_REGION": region,
            "RCLONE_CONFIG_GARAGE_ACCESS_KEY_ID": key,
            "RCLONE_CONFIG_GARAGE_SECRET_ACCESS_KEY": secret,
            "RCLONE_CONFIG_GARAGE_FORCE_PATH_STYLE": "true",
        }
        host = endpoint.split("://", 1)[-1]
        self.s3cmd_config = tmp / "s3cmd.conf"
        self.s3cmd_config.write_text(
            "[default]\n"
            f"access_key = {key}\nsecret_key = {secret}\n"
            f"host_base = {host}\nhost_bucket = {host}\nbucket_location = {region}\n"
            f"use_https = {'True' if endpoint.startswith('https') else 'False'}\nsignature_v2 = False\n"
        )

    def run(self, *args: str) -> None:
        r = subprocess.run(args, env=self.env, capture_output=True, text=True, timeout=120, check=False)
        assert r.returncode == 0, f"{' '.join(args)}: {r.returncode}\n{r.stdout}\n{r.stderr}"

    def aws(self, *args: str) -> None:
        self.run(self.aws_bin, "--endpoint-url", self.endpoint, *args)

    def copy(self, name: str, src: str, dst: str) -> None:
        """Copies key ``src`` to key ``dst`` (prefixes for ``aws s3 sync``) with tool ``name``."""
        b = self.bucket
        if name in ("aws s3 cp", "aws s3 mv", "aws s3 sync"):
            self.aws("s3", name.split()[-1], f"s3://{b}/{src}", f"s3://{b}/{dst}", "--only-show-errors")
        elif name == "aws s3api copy-object":
            self.aws("s3api", "copy-object", "--bucket", b, "--key", dst, "--copy-source", f"{b}/{src}")
        elif name == "rclone copyto":
            self.run(self.rclone_bin, "copyto", f"garage:{b}/{src}", f"garage:{b}/{dst}")
        elif name == "s3cmd cp":
            self.run(self.s3cmd_bin, "-c", str(self.s3cmd_config), "--no-progress", "cp", f"s3://{b}/{src}", f"s3://{b}/{dst}")
        else:
            raise AssertionError(name)


def readable(client: isec.s3.Client, bucket: str, key: str, plaintext: bytes) -> bool:
    try:
        got = client.get_object(bucket, key)
    except isec.FormatError as e:
        assert e.code == "not_encrypted", e
        return False
    assert got == plaintext
    return True


@pytest.fixture
def tools(s3_env: dict[str, str], s3_bucket: str, tmp_path: Path) -> Tools:
    return Tools(s3_env, s3_bucket, tmp_path)


def test_copies_by_other_tools_and_their_repair(tools: Tools, s3_raw: Any, s3_bucket: str) -> None:
    bucket = s3_bucket
    prefix = f"tools-{uuid.uuid4().hex[:10]}/"
    ring = isec.Keyring()
    ring.add_kek("kek-tools", isec.generate_kek())
    client = isec.s3.Client(s3_raw, ring, part_size=5 * MIB, max_workers=2)
    plain = {size: os.urandom(n) for size, n in SIZES.items()}
    src = {size: f"{prefix}src/{size}" for size in SIZES}
    for size, key in src.items():
        client.put_object(bucket, key, plain[size], metadata={"owner": "tools"})
    assert client.head_object(bucket, src["large"]).details["layout"] == "parts"

    observed: dict[tuple[str, str], bool] = {}
    copies: dict[tuple[str, str], tuple[str, str]] = {}  # -> (copy key, source key)
    for name in sorted({t for t, _ in EXPECTED}):
        slug = name.replace(" ", "-")
        if name == "aws s3 sync":
            tools.copy(name, f"{prefix}src/", f"{prefix}out/{slug}/")
            for size in SIZES:
                copies[(name, size)] = (f"{prefix}out/{slug}/{size}", src[size])
            continue
        for size in SIZES:
            dst = f"{prefix}out/{slug}/{size}"
            if name == "aws s3 mv":
                # On a scratch copy: the move deletes what it moved.
                scratch = f"{prefix}scratch/{size}"
                client.copy_object(bucket, src[size], bucket, scratch)
                tools.copy(name, scratch, dst)
                with pytest.raises(Exception, match="404|Not Found"):
                    s3_raw.head_object(Bucket=bucket, Key=scratch)
            else:
                tools.copy(name, src[size], dst)
            copies[(name, size)] = (dst, src[size])
    for (name, size), (dst, _) in copies.items():
        observed[(name, size)] = readable(client, bucket, dst, plain[size])

    table = "\n".join(f"{n:24} {s:6} {'readable' if ok else 'NOT readable'}" for (n, s), ok in sorted(observed.items()))
    print(f"\ncopies by other tools:\n{table}")
    assert observed == EXPECTED, table

    # A scan reports each unreadable copy as stripped_isec, not plaintext, and a rotation
    # leaves them alone with that reason.
    stripped = [k for k, ok in observed.items() if not ok]
    status = client.scan(bucket, f"{prefix}out/").run()
    assert status["by_class"].get("stripped_isec", {}).get("objects", 0) == len(stripped), status["by_class"]
    assert status["by_class"]["current"]["objects"] == len(observed) - len(stripped)
    assert "plaintext" not in status["by_class"]
    assert status["skipped_by_reason"]["stripped_isec"]["objects"] == len(stripped)

    # Repair refuses a source whose envelope does not decrypt the body...
    if stripped:
        name, size = stripped[0]
        other = "small" if size == "large" else "large"
        with pytest.raises(isec.IsecError):
            client.repair(bucket, copies[(name, size)][0], from_key=src[other])
        assert not readable(client, bucket, copies[(name, size)][0], plain[size])
    # ...and makes each copy readable from its source.
    for k in stripped:
        dst, source = copies[k]
        r = client.repair(bucket, dst, from_key=source)
        assert r.plaintext_len == len(plain[k[1]])
        assert client.get_object(bucket, dst) == plain[k[1]]
        assert client.head_object(bucket, dst).metadata.get("owner") == "tools"
    status = client.scan(bucket, f"{prefix}out/").run()
    assert status["by_class"]["current"]["objects"] == len(observed)
    # A repaired object has metadata again: repair refuses to overwrite it.
    if stripped:
        dst, source = copies[stripped[0]]
        with pytest.raises(isec.IsecError) as refused:
            client.repair(bucket, dst, from_key=source)
        assert refused.value.code == "invalid_parameter"

    keys = [o["Key"] for o in s3_raw.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]
    for key in keys:
        s3_raw.delete_object(Bucket=bucket, Key=key)
