"""Read the deployment files (docker-compose.yml, the Dockerfile, deploy/k8s, Prometheus) and turn a
container's command and environment into the same command and environment for a native process.

Pure: no process, no network. The rewrite is the only difference between a container and its native
run, and it is explicit here:

- service host names (``kafka``, ``timescaledb``) become the addresses of the real local services, the
  database name becomes the test's own database;
- each port a cockpit container listens on (6066, 8000, 9308) gets one free native port, the SAME for the
  process and for everything that looks at it (healthchecks, Prometheus targets, Kubernetes probes and
  scrape annotations): a file whose port disagrees with the service's still disagrees after the rewrite;
- image paths (``/app``, ``/registry``) become the native copy of the image's tree.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml

ROOT = Path(__file__).resolve().parents[3]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy/docker/Dockerfile"
K8S = ROOT / "deploy/k8s"
PROMETHEUS = ROOT / "deploy/prometheus/prometheus.yml"
URL_IN_TEXT = re.compile(r"https?://[^\s'\"]+")


# ------------------------------------------------------------------------------------ reading the files
def compose_services(path: Path = COMPOSE) -> dict[str, dict[str, Any]]:
    """The services of the compose file, YAML anchors and merges resolved."""
    return dict(yaml.safe_load(path.read_text())["services"])


def environment(service: Mapping[str, Any]) -> dict[str, str]:
    """A service's environment as strings (compose accepts a mapping or a KEY=VALUE list)."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def container_ports(service: Mapping[str, Any]) -> list[int]:
    """Container side of the ``ports`` mappings (``127.0.0.1:6066:6066`` -> 6066)."""
    return [int(str(p).split(":")[-1].split("/")[0]) for p in service.get("ports") or []]


def healthcheck_urls(service: Mapping[str, Any]) -> list[str]:
    """HTTP URLs a compose healthcheck opens (inside the container, so on its own host)."""
    test = (service.get("healthcheck") or {}).get("test") or []
    text = " ".join(test) if isinstance(test, list) else str(test)
    return URL_IN_TEXT.findall(text)


@dataclass(frozen=True)
class ImageConfig:
    """What the Dockerfile gives every container: environment, working directory, user, writable paths."""

    env: dict[str, str]
    workdir: str
    user: str
    writable: tuple[str, ...]
    copied: tuple[str, ...]


def image_config(path: Path = DOCKERFILE) -> ImageConfig:
    text = path.read_text().replace("\\\n", " ")
    env: dict[str, str] = {}
    workdir, user = "/", "root"
    writable: list[str] = []
    copied: list[str] = []
    for line in text.splitlines():
        words = shlex.split(line, comments=True) if line.strip() else []
        if not words:
            continue
        op, args = words[0].upper(), words[1:]
        if op == "ENV":
            env.update(dict(arg.split("=", 1) for arg in args))
        elif op == "WORKDIR":
            workdir = args[0]
        elif op == "USER":
            user = args[0]
        elif op == "COPY" and not any(a.startswith("--") for a in args):
            copied += args[:-1]
        elif op == "RUN" and "chown" in args:
            at = args.index("chown")
            tail = args[at + 1 :]
            owner_at = next(i for i, a in enumerate(tail) if not a.startswith("-"))
            paths = []
            for arg in tail[owner_at + 1 :]:
                if arg in ("&&", ";"):
                    break
                paths.append(arg)
            writable += paths
    return ImageConfig(env, workdir, user, tuple(writable), tuple(copied))


def prometheus_targets(path: Path = PROMETHEUS) -> dict[str, list[str]]:
    """Scrape job -> ``host:port`` targets."""
    config = yaml.safe_load(path.read_text())
    return {
        job["job_name"]: [t for sc in job.get("static_configs", []) for t in sc["targets"]]
        for job in config["scrape_configs"]
    }


@dataclass(frozen=True)
class K8sContainer:
    workload: str
    name: str
    command: list[str]
    env: dict[str, str]  # from the ConfigMap(s) of envFrom (secrets are created out of band)
    secrets: list[str]
    ports: dict[str, int]
    probes: dict[str, tuple[str, int]]  # probe -> (path, port number)
    scrape_port: int | None
    scrape_path: str | None
    mounts: dict[str, bool] = field(default_factory=dict)  # mount path -> read-only


def k8s_containers(directory: Path = K8S) -> dict[str, K8sContainer]:
    """Every container (init containers too) of the kustomization, keyed ``workload/container``."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    documents = [
        d
        for resource in kustomization["resources"]
        for d in yaml.safe_load_all((directory / resource).read_text())
        if d
    ]
    config_maps = {d["metadata"]["name"]: d.get("data", {}) for d in documents if d["kind"] == "ConfigMap"}
    found: dict[str, K8sContainer] = {}
    for doc in documents:
        if doc["kind"] not in ("Deployment", "Job"):
            continue
        template = doc["spec"]["template"]
        annotations = template.get("metadata", {}).get("annotations", {})
        spec = template["spec"]
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            env: dict[str, str] = {}
            secrets = []
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    env.update(config_maps[source["configMapRef"]["name"]])
                else:
                    secrets.append(source["secretRef"]["name"])
            env.update({e["name"]: e["value"] for e in container.get("env", []) if "value" in e})
            ports = {
                p.get("name", str(p["containerPort"])): p["containerPort"] for p in container.get("ports", [])
            }
            probes = {}
            for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                if probe in container:
                    get = container[probe]["httpGet"]
                    port = get["port"]
                    probes[probe] = (get["path"], ports[port] if isinstance(port, str) else int(port))
            is_main = container in spec["containers"]
            found[f"{doc['metadata']['name']}/{container['name']}"] = K8sContainer(
                workload=doc["metadata"]["name"],
                name=container["name"],
                command=list(container["command"]),
                env=env,
                secrets=secrets,
                ports=ports,
                probes=probes,
                scrape_port=int(annotations["prometheus.io/port"])
                if is_main and "prometheus.io/port" in annotations
                else None,
                scrape_path=annotations.get("prometheus.io/path") if is_main else None,
                mounts={m["mountPath"]: bool(m.get("readOnly")) for m in container.get("volumeMounts", [])},
            )
    return found


# ------------------------------------------------------------------------------------ the rewrite
@dataclass
class NativeMap:
    """Container world -> native world (see the module docstring)."""

    hosts: dict[str, tuple[str, int]]  # "kafka:9092" -> ("127.0.0.1", real port)
    database: str  # the test's database instead of the compose one
    ports: dict[int, int]  # container port of a cockpit service -> native port
    paths: dict[str, str]  # image path -> native path (longest first)
    compose_database: str = "cockpit"

    def port(self, container_port: int) -> int:
        return self.ports[container_port]

    def path(self, value: str) -> str:
        for image_path, native in sorted(self.paths.items(), key=lambda kv: -len(kv[0])):
            if value == image_path or value.startswith(image_path + "/"):
                return native + value[len(image_path) :]
        return value

    def address(self, host: str, port: int) -> tuple[str, int]:
        """A ``host:port`` as seen from another container -> where the native process listens/answers."""
        if f"{host}:{port}" in self.hosts:
            return self.hosts[f"{host}:{port}"]
        if port in self.ports:
            return "127.0.0.1", self.ports[port]
        raise KeyError(f"{host}:{port} is neither a mapped service nor a cockpit port")

    def url(self, value: str) -> str:
        parts = urlsplit(value)
        if parts.hostname is None or parts.port is None:
            return value
        host, port = self.address(parts.hostname, parts.port)
        auth = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
        path = parts.path
        if parts.scheme.startswith("postgres") and path == f"/{self.compose_database}":
            path = f"/{self.database}"
        return urlunsplit((parts.scheme, f"{auth}{host}:{port}", path, parts.query, parts.fragment))

    def value(self, name: str, value: str) -> str:
        if "://" in value:
            return self.url(value)
        if name.endswith("_PORT") and value.isdigit() and int(value) in self.ports:
            return str(self.ports[int(value)])
        if name.endswith("BOOTSTRAP_SERVERS"):
            return ",".join("{}:{}".format(*self.address(*_host_port(hp))) for hp in value.split(","))
        return self.path(value)

    def env(self, values: Mapping[str, str]) -> dict[str, str]:
        return {k: self.value(k, v) for k, v in values.items()}

    def command(self, argv: list[str]) -> list[str]:
        out: list[str] = []
        for i, arg in enumerate(argv):
            previous = argv[i - 1] if i else ""
            if previous == "--port" and arg.isdigit():
                out.append(str(self.port(int(arg))))
            else:
                out.append(self.path(arg))
        return out


def _host_port(value: str) -> tuple[str, int]:
    host, _, port = value.strip().rpartition(":")
    return host, int(port)


def listening_ports(proc_net_tcp: str) -> dict[int, set[str]]:
    """Port -> local addresses of LISTEN sockets, from the text of /proc/net/tcp."""
    found: dict[int, set[str]] = {}
    for line in proc_net_tcp.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 4 or fields[3] != "0A":  # 0A = TCP_LISTEN
            continue
        address, port = fields[1].split(":")
        ip = ".".join(str(int(address[i : i + 2], 16)) for i in (6, 4, 2, 0))
        found.setdefault(int(port, 16), set()).add(ip)
    return found
