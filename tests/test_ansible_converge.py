"""Converge the Ansible role on a real Debian 12 root file system, through a chroot.

A minimal bookworm (``debootstrap --variant=minbase``, cached as a tarball by
:mod:`tests.support.rootfs`) is unpacked into a temporary folder and provisioned with
``ansible-playbook site.yml`` over the ``community.general.chroot`` connection, as a
host in the ``coral`` group (PCIe variant) whose MQTT password comes from Ansible Vault.
Then, inside the chroot: the user, the venv, ``edge-pose --version``, ``edge-pose config
check``, the unit and its ``multi-user.target.wants`` link, file modes and owners, the
models' checksums, the Coral repository and key files, and ``edge-pose process`` on a
real photo. A second run must report ``changed=0``; an upgrade (new build of the
project) must reinstall it and notify the restart handler exactly once; ``state=absent``
must leave nothing behind.

What this does NOT check (a chroot has no systemd as PID 1, and no Coral repository is
reachable from here): that the service starts, reports READY/active, and publishes
``online`` on ``<base>/<node>/availability``; that the handlers' daemon-reload and
restart run (they are skipped, and the test checks the role *says* so); that
``libedgetpu1-std`` installs (the role reports the unreachable repository and the test
checks that message). Those paths run only on a host booted with systemd.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import rootfs

REPO = Path(__file__).resolve().parent.parent
ANSIBLE_DIR = REPO / "ansible"
BIN = Path(sys.executable).parent
SAMPLE_IMAGE = "images/yoga-beach.jpg"
HOST = "rootfs"
NODE_ID = "chroot-test"
THREADS = 2
MQTT_USER = "edge-pose-test"
MQTT_PASSWORD = "s3cret-from-vault"
VAULT_PASSWORD = "vault-pass-for-tests"
UNIT = "/etc/systemd/system/edge-pose.service"
WANTS_LINK = "/etc/systemd/system/multi-user.target.wants/edge-pose.service"

log = logging.getLogger(__name__)

pytestmark = [pytest.mark.ansible, pytest.mark.slow]

if os.geteuid() != 0:
    pytest.skip("the converge test needs root (debootstrap, chroot)", allow_module_level=True)


@dataclass(frozen=True)
class Run:
    """One ansible-playbook run: its output, the recap of the host, wall time."""

    output: str
    ok: int
    changed: int
    failed: int
    seconds: float


@dataclass(frozen=True)
class Site:
    root: Path
    src: Path
    inventory: Path
    vault_password_file: Path
    coral_key: Path
    logs: Path

    def said(self, run: Run, text: str) -> bool:
        """Whether the play printed ``text`` (the YAML callback wraps long messages)."""
        return " ".join(text.split()) in " ".join(run.output.split())


def _snapshot_source(dest: Path) -> Path:
    """A frozen copy of what the role deploys, so the runs see one version of it."""
    dest.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, dest / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in ("edge", "systemd", "models"):
        shutil.copytree(REPO / name, dest / name, ignore=ignore)
    return dest


def _vault_encrypt(value: str, name: str, password_file: Path) -> str:
    proc = subprocess.run(
        [
            str(BIN / "ansible-vault"),
            "encrypt_string",
            "--vault-password-file",
            str(password_file),
            "--name",
            name,
            value,
        ],
        capture_output=True,
        text=True,
        check=True,
        env=_env(),
    )
    return proc.stdout


def _test_key(tmp: Path) -> Path:
    """An ASCII-armoured OpenPGP key standing in for Coral's (unreachable from here)."""
    home = tmp / "gnupg"
    home.mkdir(mode=0o700)
    gpg = ["gpg", "--batch", "--homedir", str(home)]
    subprocess.run(
        [*gpg, "--passphrase", "", "--quick-gen-key", "edge-pose test <t@example.invalid>"],
        check=True,
        capture_output=True,
    )
    key = tmp / "coral-test-key.asc"
    key.write_bytes(
        subprocess.run([*gpg, "--export", "--armor"], check=True, capture_output=True).stdout
    )
    assert key.read_bytes().startswith(b"-----BEGIN PGP PUBLIC KEY BLOCK-----")
    return key


def _env() -> dict[str, str]:
    return dict(
        os.environ,
        ANSIBLE_CONFIG=str(ANSIBLE_DIR / "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks",
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    )


def _playbook(site: Site, *extra: str) -> Run:
    cmd = [
        str(BIN / "ansible-playbook"),
        "-i",
        str(site.inventory),
        "-c",
        "community.general.chroot",
        "--vault-password-file",
        str(site.vault_password_file),
        "site.yml",
        *extra,
    ]
    start = time.monotonic()
    proc = subprocess.run(
        cmd,
        cwd=ANSIBLE_DIR,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    seconds = time.monotonic() - start
    out = proc.stdout + proc.stderr
    site.logs.mkdir(exist_ok=True)
    (site.logs / f"run-{len(list(site.logs.iterdir())) + 1}.log").write_text(out, encoding="utf-8")
    m = re.search(
        rf"^{HOST}\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", out, re.M
    )
    assert proc.returncode == 0 and m, f"ansible-playbook failed ({proc.returncode}):\n{out}"
    run = Run(out, int(m.group(1)), int(m.group(2)), int(m.group(4)), seconds)
    recap = out.rsplit("TASKS RECAP", 1)[-1].splitlines()[3:8]
    log.info(
        "ansible-playbook %s: ok=%d changed=%d in %.0f s; slowest tasks:\n%s",
        extra,
        run.ok,
        run.changed,
        seconds,
        "\n".join(recap),
    )
    return run


def _changed_tasks(run: Run) -> list[str]:
    task, found = "", []
    for line in run.output.splitlines():
        if line.startswith(("TASK [", "RUNNING HANDLER [")):
            task = line.split("[", 1)[1].split("]", 1)[0]
        elif line.startswith("changed:"):
            found.append(task)
    return found


def _in_root(root: Path, *cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["chroot", str(root), *cmd],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "HOME": "/root"},
    )


def _group_id(root: Path, name: str) -> int | None:
    for line in (root / "etc/group").read_text(encoding="utf-8").splitlines():
        fields = line.split(":")
        if fields[0] == name:
            return int(fields[2])
    return None


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    if shutil.which("debootstrap") is None:
        pytest.fail("debootstrap is missing: run scripts/setup --dev (apt-get install debootstrap)")
    tmp = tmp_path_factory.mktemp("ansible")
    start = time.monotonic()
    root = rootfs.unpack(rootfs.ensure_tarball(), tmp / "root")
    log.info("root file system ready in %.0f s", time.monotonic() - start)
    src = _snapshot_source(tmp / "src")
    vault_pw = tmp / "vault-password"
    vault_pw.write_text(VAULT_PASSWORD + "\n", encoding="utf-8")
    key = _test_key(tmp)
    inv_dir = tmp / "inventory"
    (inv_dir / "host_vars").mkdir(parents=True)
    (inv_dir / "hosts.yml").write_text(
        f"""edge_pose:
  children:
    pi4:
      hosts:
        {HOST}:
          ansible_host: {root}
          ansible_connection: community.general.chroot
          ansible_python_interpreter: /usr/bin/python3
    coral:
      hosts:
        {HOST}:
""",
        encoding="utf-8",
    )
    vaulted = _vault_encrypt(MQTT_PASSWORD, "vault_edge_pose_mqtt_password", vault_pw)
    (inv_dir / "host_vars" / f"{HOST}.yml").write_text(
        f"""edge_pose_src_dir: {src}
edge_pose_node_id: {NODE_ID}
edge_pose_source_uri: picamera2
edge_pose_threads: {THREADS}
edge_pose_coral_variant: pcie
edge_pose_coral_key_src: {key}
edge_pose_mqtt_username: {MQTT_USER}
edge_pose_mqtt_password: "{{{{ vault_edge_pose_mqtt_password }}}}"
{vaulted}""",
        encoding="utf-8",
    )
    return Site(root, src, inv_dir / "hosts.yml", vault_pw, key, tmp / "logs")


@pytest.fixture(scope="module")
def first_run(site: Site) -> Run:
    return _playbook(site)


@pytest.fixture(scope="module")
def second_run(site: Site, first_run: Run) -> Run:
    return _playbook(site)


def test_converge_installs_user_venv_and_cli(site: Site, first_run: Run) -> None:
    root = site.root
    assert first_run.changed > 0
    passwd = _in_root(root, "getent", "passwd", "edge-pose").stdout.strip().split(":")
    assert passwd[0] == "edge-pose" and passwd[6] == "/usr/sbin/nologin"
    assert int(passwd[2]) < 1000  # a system user
    groups = set(_in_root(root, "id", "-nG", "edge-pose").stdout.split())
    assert {"edge-pose", "video", "render", "plugdev", "apex"} <= groups
    version = tomllib.loads((site.src / "pyproject.toml").read_text())["project"]["version"]
    py = _in_root(
        root,
        "/opt/edge-pose/.venv/bin/python",
        "-c",
        "import edge, sys; print(edge.__version__, sys.prefix)",
    )
    assert py.returncode == 0, py.stderr
    assert py.stdout.split() == [version, "/opt/edge-pose/.venv"]
    cli = _in_root(root, "/opt/edge-pose/.venv/bin/edge-pose", "--version")
    assert cli.returncode == 0, cli.stderr
    assert cli.stdout.strip() == f"edge-pose {version}"


def test_config_is_templated_from_host_vars_and_parses(site: Site, first_run: Run) -> None:
    root = site.root
    check = _in_root(
        root, "/opt/edge-pose/.venv/bin/edge-pose", "config", "check", "/etc/edge-pose/config.toml"
    )
    assert check.returncode == 0, check.stdout + check.stderr
    config = tomllib.loads((root / "etc/edge-pose/config.toml").read_text(encoding="utf-8"))
    assert config["mqtt"]["node_id"] == NODE_ID
    assert config["mqtt"]["username"] == MQTT_USER
    assert config["models"]["threads"] == THREADS
    assert config["models"]["delegate"] == "edgetpu"  # host in the coral group
    assert config["models"]["dir"] == "/opt/edge-pose/models"
    assert config["source"]["uri"] == "picamera2"
    assert MQTT_PASSWORD not in (root / "etc/edge-pose/config.toml").read_text()
    st = (root / "etc/edge-pose/config.toml").stat()
    assert (oct(st.st_mode & 0o777), st.st_uid, st.st_gid) == (
        "0o640",
        0,
        _group_id(root, "edge-pose"),
    )
    # The password from Ansible Vault is the systemd credential, root-only.
    cred = root / "etc/edge-pose/mqtt-password"
    assert cred.read_text(encoding="utf-8").strip() == MQTT_PASSWORD
    st = cred.stat()
    assert (oct(st.st_mode & 0o777), st.st_uid, st.st_gid) == ("0o600", 0, 0)
    # With a password there is no drop-in clearing LoadCredential=.
    assert not (root / "etc/systemd/system/edge-pose.service.d/10-no-credential.conf").exists()
    assert MQTT_PASSWORD not in first_run.output


def test_unit_installed_and_enabled_without_systemd(site: Site, first_run: Run) -> None:
    root = site.root
    unit = (root / UNIT.lstrip("/")).read_text(encoding="utf-8")
    assert unit == (site.src / "systemd/edge-pose.service").read_text(encoding="utf-8")
    assert "ExecStart=/opt/edge-pose/.venv/bin/edge-pose run" in unit
    st = (root / UNIT.lstrip("/")).stat()
    assert (oct(st.st_mode & 0o777), st.st_uid) == ("0o644", 0)
    link = root / WANTS_LINK.lstrip("/")
    assert link.is_symlink() and os.readlink(link) == UNIT
    # systemd's own offline view of the root file system agrees (systemctl --root).
    systemctl = shutil.which("systemctl")
    if systemctl is None:
        pytest.fail("systemctl missing on the controller: scripts/setup --dev installs systemd")
    enabled = subprocess.run(
        [systemctl, f"--root={root}", "is-enabled", "edge-pose.service"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert enabled.stdout.strip() == "enabled", enabled.stdout + enabled.stderr
    # systemd is not PID 1 in a chroot: the role must say it did not start or verify.
    assert site.said(first_run, "is not booted with systemd")
    assert site.said(first_run, "NOT started and the service is NOT verified")


def test_models_copied_and_match_the_manifest(site: Site, first_run: Run) -> None:
    root = site.root
    manifest = tomllib.loads((site.src / "models/manifest.toml").read_text(encoding="utf-8"))
    assert manifest["models"], "no built models in models/manifest.toml"
    for entry in manifest["models"].values():
        path = root / "opt/edge-pose/models" / entry["file"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]
        st = path.stat()
        assert (oct(st.st_mode & 0o777), st.st_uid, st.st_gid) == ("0o644", 0, 0)
    st = (root / "opt/edge-pose").stat()
    assert (oct(st.st_mode & 0o777), st.st_uid) == ("0o755", 0)


def test_coral_repository_and_key_rendered(site: Site, first_run: Run) -> None:
    root = site.root
    sources = (root / "etc/apt/sources.list.d/coral-edgetpu.sources").read_text()
    fields = dict(
        line.split(": ", 1) for line in sources.splitlines() if line and not line.startswith("#")
    )
    assert fields == {
        "Types": "deb",
        "URIs": "https://packages.cloud.google.com/apt",
        "Suites": "coral-edgetpu-stable",
        "Components": "main",
        "Architectures": {"x86_64": "amd64", "aarch64": "arm64"}[os.uname().machine],
        "Signed-By": "/etc/apt/keyrings/coral-edgetpu.asc",
    }
    key = root / "etc/apt/keyrings/coral-edgetpu.asc"
    assert key.read_bytes() == site.coral_key.read_bytes()
    assert oct(key.stat().st_mode & 0o777) == "0o644"
    rule = (root / "etc/udev/rules.d/65-edge-pose-apex.rules").read_text()
    assert 'SUBSYSTEM=="apex", MODE="0660", GROUP="apex"' in rule
    assert _group_id(root, "apex") is not None
    # The repository is unreachable from here: the role must say the runtime is missing.
    installed = _in_root(root, "dpkg-query", "-W", "-f=${Status}", "libedgetpu1-std")
    if "install ok installed" not in installed.stdout:
        assert site.said(first_run, "libedgetpu1-std was NOT installed")


def test_picamera2_source_without_camera_warns(site: Site, first_run: Run) -> None:
    assert site.said(first_run, "configured for source picamera2 but has no /dev/media* device")


def test_process_finds_a_pose_inside_the_chroot(
    site: Site, first_run: Run, shared_data: Path
) -> None:
    root = site.root
    shutil.copyfile(shared_data / SAMPLE_IMAGE, root / "tmp/yoga-beach.jpg")
    proc = _in_root(
        root,
        "/opt/edge-pose/.venv/bin/edge-pose",
        "process",
        "--no-progress",
        "--threads",
        "2",
        "/tmp/yoga-beach.jpg",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    frames = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(frames) == 1
    poses = frames[0]["poses"]
    assert len(poses) >= 1 and poses[0]["score"] > 0.5
    assert len(poses[0]["landmarks"]) == 33


def test_second_run_changes_nothing(second_run: Run) -> None:
    assert second_run.failed == 0
    assert second_run.changed == 0, f"changed on the second run: {_changed_tasks(second_run)}"


def test_upgrade_reinstalls_and_restarts_once(site: Site, second_run: Run) -> None:
    """A new build of the same version is reinstalled; the restart handler fires once."""
    marker = site.src / "edge" / "_upgrade_marker.py"
    marker.write_text('"""Marks a new build for the upgrade test."""\n', encoding="utf-8")
    try:
        run = _playbook(site)
    finally:
        marker.unlink()
    assert run.changed > 0
    probe = _in_root(
        site.root, "/opt/edge-pose/.venv/bin/python", "-c", "import edge._upgrade_marker"
    )
    assert probe.returncode == 0, probe.stderr
    assert run.output.count("RUNNING HANDLER [edge_pose : Restart edge-pose]") == 1


@pytest.fixture(scope="module")
def removed(site: Site, second_run: Run) -> Iterator[Run]:
    yield _playbook(site, "-e", "edge_pose_state=absent")


def test_state_absent_leaves_nothing_behind(site: Site, removed: Run) -> None:
    root = site.root
    assert removed.changed > 0
    for path in (
        "opt/edge-pose",
        "etc/edge-pose",
        "var/lib/edge-pose",
        UNIT.lstrip("/"),
        WANTS_LINK.lstrip("/"),
        "etc/systemd/system/edge-pose.service.d",
        "etc/apt/sources.list.d/coral-edgetpu.sources",
        "etc/apt/keyrings/coral-edgetpu.asc",
        "etc/udev/rules.d/65-edge-pose-apex.rules",
    ):
        assert not (root / path).exists() and not (root / path).is_symlink(), path
    for db in ("passwd", "group", "shadow", "gshadow"):
        names = [line.split(":")[0] for line in (root / "etc" / db).read_text().splitlines()]
        assert "edge-pose" not in names, db
    leftovers = [
        str(p.relative_to(root))
        for p in root.rglob("*")
        if re.search(r"edge[-_]pose|coral-edgetpu|apex\.rules", p.name)
        and not p.is_relative_to(root / "proc")
    ]
    assert leftovers == []
    # Kept on purpose: apt packages (python3-venv, ...) and the shared device groups.
    assert _group_id(root, "video") is not None
