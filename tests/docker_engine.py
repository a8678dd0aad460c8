"""A private Docker engine for the container tests: dockerd started by hand, stopped by its pid.

Everything the engine owns (data, exec state, pid file, socket) lives under one directory, so a
system Docker, if any, is neither used nor touched. Networking is off (``--bridge=none
--iptables=false``): builds and runs use ``--network host``.
"""

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

#: Debian's packages that provide dockerd (with containerd and runc) and debootstrap.
PACKAGES = {"dockerd": "docker.io", "debootstrap": "debootstrap"}


def find_tool(name: str) -> str | None:
    """Path of ``name`` on PATH or in the sbin directories root's PATH may lack."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/local/sbin")


def docker_client() -> str | None:
    """The docker client of Debian's docker.io (matches its dockerd), else any on PATH."""
    return "/usr/bin/docker" if os.access("/usr/bin/docker", os.X_OK) else find_tool("docker")


def install_missing(tools: list[str], timeout: float = 600) -> list[str]:
    """Install Debian's packages for the ``tools`` not found; return the reasons for failures.

    Services are not started by the install when ``/usr/sbin/policy-rc.d`` forbids it; the
    engine is always started by hand.
    """
    missing = sorted({PACKAGES[t] for t in tools if find_tool(t) is None})
    if not missing:
        return []
    if os.geteuid() != 0:
        return [f"{', '.join(missing)} not installed and not root to install them"]
    if shutil.which("apt-get") is None:
        return [f"{', '.join(missing)} not installed and no apt-get"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=timeout)
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        return [f"apt-get install {' '.join(missing)} failed: {done.stderr.strip()[-500:]}"]
    return [f"{t} still not found after installing" for t in tools if find_tool(t) is None]


class DockerEngine:
    """dockerd in ``root``: ``start()`` launches it, ``stop()`` ends it by its pid.

    Args:
        root: directory for the engine's data root, exec root, pid file, socket and log.
    """

    def __init__(self, root: Path):
        self.root = Path(root)
        self.socket = self.root / "docker.sock"
        self.log = self.root / "dockerd.log"
        self._process: subprocess.Popen | None = None

    @property
    def env(self) -> dict[str, str]:
        """Environment for docker clients talking to this engine.

        The classic builder is chosen because the tests read its ``Using cache`` lines.
        """
        return {**os.environ, "DOCKER_HOST": f"unix://{self.socket}", "DOCKER_BUILDKIT": "0"}

    @property
    def pid(self) -> int | None:
        """pid of the running dockerd, or None."""
        return None if self._process is None else self._process.pid

    def start(self, timeout: float = 60) -> None:
        """Start dockerd and wait until it answers; raise RuntimeError with its log if not."""
        dockerd = find_tool("dockerd")
        if dockerd is None:
            raise RuntimeError("dockerd not found")
        self.root.mkdir(parents=True, exist_ok=True)
        command = [
            dockerd,
            f"--data-root={self.root / 'data'}",
            f"--exec-root={self.root / 'exec'}",
            f"--pidfile={self.root / 'dockerd.pid'}",
            f"--host=unix://{self.socket}",
            "--bridge=none",
            "--iptables=false",
            "--ip-masq=false",
        ]
        with open(self.log, "wb") as log:
            self._process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            done = self.docker("version", "--format", "{{.Server.Version}}", check=False)
            if done.returncode == 0:
                return
            time.sleep(0.5)
        log_tail = self.log.read_text(errors="replace")[-2000:]
        self.stop()
        raise RuntimeError(f"dockerd did not start within {timeout} s:\n{log_tail}")

    def docker(
        self, *args: str, check: bool = True, timeout: float = 120, cwd: Path | None = None
    ) -> subprocess.CompletedProcess:
        """Run a docker client command against this engine; raise with its output on failure."""
        command = [docker_client() or "docker", *args]
        done = subprocess.run(
            command, env=self.env, cwd=cwd, capture_output=True, text=True, timeout=timeout
        )
        if check and done.returncode != 0:
            raise RuntimeError(
                f"{' '.join(command)} exited {done.returncode}:\n"
                f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
            )
        return done

    def stop(self, timeout: float = 30) -> None:
        """Stop dockerd by its pid (SIGTERM, then SIGKILL) and unmount what it left under root."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(10)
        self._process = None
        for mount in reversed(self._mounts_under_root()):
            subprocess.run(["umount", "-l", mount], capture_output=True, check=False)

    def _mounts_under_root(self) -> list[str]:
        """Mount points below ``root`` (left only if dockerd died uncleanly)."""
        prefix = str(self.root.resolve()) + "/"
        with open("/proc/self/mounts") as mounts:
            points = [line.split()[1] for line in mounts]
        return [p for p in points if p.startswith(prefix)]

    def __enter__(self) -> "DockerEngine":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
