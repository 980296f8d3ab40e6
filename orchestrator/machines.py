"""Machines of a testbed experiment: the portal's "List View" in, `machine_info.txt` in and out.

The list view is read by what each column *means*, not by its position, because the portal's
columns move (a missing startup status, a CloudLab cluster column, tabs for spaces): the node
name is the first field, the physical id the second, the optional columns sit between them and
the SSH command, and the SSH command starts at the `ssh` token.

Everything read here may later reach a remote shell (as an argument, always quoted), so the
parser is strict about what a name, user, host or interface may look like and rejects the rest
with one line naming the file and the line.

A machine's role comes from its name (`proxy-3` is a proxy), exactly as in the original, so
renaming a line of machine_info.txt (proxy-5 -> server-0) moves that machine to another role.
Unlike the original, which sorted names as strings (proxy-10 before proxy-2), machines of a
role are ordered by their numeric index.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import msgspec

from orchestrator.systems import MACHINE_ROLES

# The original knew `dt` (dependency tracker) names but never started anything on them.
UNUSED_ROLES = ("dt",)
# Every name prefix a list may hold: the registry's machine roles, then the unused ones.
ROLES = (*MACHINE_ROLES, *UNUSED_ROLES)

_NAME = re.compile(r"^(?P<role>[a-z]+)-(?P<index>0|[1-9][0-9]{0,5})$")
# A POSIX-ish user name: what useradd accepts, no shell metacharacters.
_USER = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
# A DNS name or an IPv4 address (IPv6 literals are not used by the portals).
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})"
_HOST = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*\.?$")
# Physical ids, hardware types, key paths: printable, no separator that we write.
_TOKEN = re.compile(r"^[A-Za-z0-9_.:/+@=#~-]{1,200}$")
# Linux interface names are at most 15 bytes (IFNAMSIZ - 1); no '/' and no whitespace.
_IFACE = re.compile(r"^[A-Za-z0-9_.:-]{1,15}$")
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
# A node's absolute work directory: no separator of machine_info.txt, no white space.
_WORKDIR = re.compile(r"^/[^,\s]{0,4095}$")

# The ssh(1) options a list view may carry. -p, -l and -i are used; the others are kept in
# `ssh_options` for the record but never applied (host keys are always checked). Options that
# run commands (-o ProxyCommand=..., LocalCommand) or open forwards are refused outright.
_SSH_ARG_OPTIONS = frozenset("pilo")
_SSH_FLAG_OPTIONS = frozenset("46AaCqTtvXxYy")
_SSH_O_KEYS = frozenset(k.lower() for k in (
    "StrictHostKeyChecking", "UserKnownHostsFile", "IdentityFile", "IdentitiesOnly", "Port",
    "User", "ConnectTimeout", "ServerAliveInterval", "ServerAliveCountMax", "LogLevel",
    "ForwardAgent", "Compression", "BatchMode", "AddKeysToAgent", "HostKeyAlgorithms",
    "PubkeyAcceptedKeyTypes", "PubkeyAcceptedAlgorithms", "CheckHostIP",
))
# Status words the portals show in the columns between the physical id and the SSH command.
_STATUS_WORDS = frozenset({"ready", "booting", "failed", "up", "down", "n/a", "finished",
                           "unknown", "shutdown", "reloading"})
_HEADER_WORDS = frozenset({"id", "node", "name", "node_id", "client_id"})


class MachineListError(ValueError):
    """A machine list or machine_info file is malformed; the message is one line."""


class Machine(msgspec.Struct, frozen=True, kw_only=True):
    """One testbed node. Fields found by `masonctl setup` are empty strings until then."""

    name: str
    role: str
    index: int
    physical_id: str = ""
    hardware_type: str = ""
    ssh_user: str = ""
    ssh_host: str = ""
    ssh_port: int = 22
    # Extra ssh(1) options from the list view, as tokens (e.g. ("-i", "~/.ssh/key")).
    ssh_options: tuple[str, ...] = ()
    experiment_ip: str = ""
    experiment_iface: str = ""
    mac: str = ""
    control_ip: str = ""
    # The original profile had a second experiment interface; kept for its 7th column.
    experiment_iface2: str = ""
    # Where setup put this machine's venv and code (absolute); kept across a rename.
    workdir: str = ""

    @property
    def unused(self) -> bool:
        """Whether the role is one mason never starts anything on (`dt`)."""
        return self.role in UNUSED_ROLES

    @property
    def identity_file(self) -> str | None:
        """The `-i` key named in the list view's SSH command, if any."""
        opts = self.ssh_options
        for i, tok in enumerate(opts):
            if tok == "-i" and i + 1 < len(opts):
                return opts[i + 1]
            if tok.startswith("-i") and len(tok) > 2:
                return tok[2:]
        return None

    def renamed(self, name: str) -> Machine:
        """The same node under another name, hence possibly another role."""
        role, index = role_of(name)
        return msgspec.structs.replace(self, name=name, role=role, index=index)


class Cluster(msgspec.Struct, frozen=True):
    """The machines of one experiment, in the order they were listed."""

    machines: tuple[Machine, ...]

    def __iter__(self) -> Iterator[Machine]:
        return iter(self.machines)

    def __len__(self) -> int:
        return len(self.machines)

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.machines]

    def get(self, name: str) -> Machine:
        for machine in self.machines:
            if machine.name == name:
                return machine
        raise KeyError(name)

    def by_role(self, role: str) -> list[Machine]:
        """The machines of one role ordered by numeric index (proxy-2 before proxy-10)."""
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
        return sorted((m for m in self.machines if m.role == role), key=lambda m: m.index)

    def counts(self) -> dict[str, int]:
        return {role: sum(1 for m in self.machines if m.role == role) for role in ROLES}


def role_of(name: str) -> tuple[str, int]:
    """(`proxy`, 3) for `proxy-3`; ValueError with a one-line reason otherwise."""
    match = _NAME.match(name)
    if match is None:
        raise ValueError(
            f"node name {name!r} is not <role>-<number> (roles: {', '.join(ROLES)})"
        )
    role = match["role"]
    if role not in ROLES:
        raise ValueError(f"node name {name!r} has unknown role prefix {role!r} "
                         f"(roles: {', '.join(ROLES)})")
    return role, int(match["index"])


def check_user(name: str) -> str:
    """A login name safe to use anywhere (ValueError otherwise)."""
    if not _USER.match(name):
        raise ValueError(f"bad user name {name!r}")
    return name


def check_workdir(path: str) -> str:
    if not _WORKDIR.match(path) or not path.isprintable():
        raise ValueError(f"bad workdir {path!r} (absolute, no commas or spaces)")
    return path


def check_iface(name: str) -> str:
    if not _IFACE.match(name):
        raise ValueError(f"bad interface name {name!r}")
    return name


# ---- the portal's List View --------------------------------------------------------------


def _parse_ssh(tokens: Sequence[str]) -> tuple[str, str, int, tuple[str, ...]]:
    """Parse an ssh(1) command line (tokens[0] == 'ssh') into user, host, port, options."""
    user = ""
    port = 22
    options: list[str] = []
    dest: str | None = None
    i = 1
    while i < len(tokens):
        tok = tokens[i]
        if dest is not None:
            raise ValueError(f"unexpected {tok!r} after the destination {dest!r}")
        if tok.startswith("-") and len(tok) >= 2:
            letter = tok[1]
            if letter in _SSH_ARG_OPTIONS:
                if len(tok) > 2:
                    value = tok[2:]
                elif i + 1 < len(tokens):
                    value = tokens[i + 1]
                    i += 1
                else:
                    raise ValueError(f"ssh option {tok} needs a value")
                if letter == "p":
                    port = _port(value)
                elif letter == "l":
                    user = value
                else:
                    if not _TOKEN.match(value):
                        raise ValueError(f"bad value {value!r} for ssh option -{letter}")
                    if letter == "o" and value.split("=", 1)[0].lower() not in _SSH_O_KEYS:
                        raise ValueError(f"ssh option -o {value} is not accepted here")
                    options += [f"-{letter}", value]
            elif all(c in _SSH_FLAG_OPTIONS for c in tok[1:]):
                options.append(tok)
            else:
                raise ValueError(f"unknown ssh option {tok!r}")
        else:
            dest = tok
        i += 1
    if dest is None:
        raise ValueError("the ssh command has no user@host")
    if dest.startswith("ssh://"):
        dest = dest[len("ssh://"):]
        if ":" in dest.rsplit("@", 1)[-1]:
            dest, _, port_text = dest.rpartition(":")
            port = _port(port_text)
    if "@" in dest:
        user, _, host = dest.rpartition("@")
    else:
        host = dest
    if not user:
        raise ValueError(f"the ssh command has no user@host (got {dest!r})")
    if not _USER.match(user):
        raise ValueError(f"bad ssh user {user!r}")
    if not _HOST.match(host):
        raise ValueError(f"bad ssh host {host!r}")
    return user, host, port, tuple(options)


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ValueError(f"bad port {text!r} (want 1-65535)")
    return int(text)


def _middle_columns(middle: Sequence[str]) -> str:
    """The hardware type among the columns between the physical id and the ssh command."""
    if not middle:
        return ""
    first = middle[0]
    if first.lower() in _STATUS_WORDS or "/" in first or first.startswith("urn:"):
        return ""
    return first


def parse_list_view(text: str, source: str = "machine_list.txt") -> Cluster:
    """Parse the portal's List View; MachineListError names the file and line when it fails."""
    machines: list[Machine] = []
    seen: dict[str, int] = {}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()

        def bad(what: str, lineno: int = lineno) -> MachineListError:
            return MachineListError(f"{source}:{lineno}: {what}")

        try:
            at = fields.index("ssh")
        except ValueError:
            # A copied table header ("Node ID  Physical Node  Type ...") is not a machine.
            if fields[0].lower().rstrip(":") in _HEADER_WORDS and not machines:
                continue
            raise bad("no ssh command (expected '... ssh -p 22 user@host')") from None
        if at < 2:
            raise bad("expected '<node name> <physical id> ... ssh ...' before the ssh command")
        name, physical = fields[0], fields[1]
        try:
            role, index = role_of(name)
        except ValueError as exc:
            raise bad(str(exc)) from None
        if name in seen:
            raise bad(f"duplicate node name {name!r} (first on line {seen[name]})")
        hardware = _middle_columns(fields[2:at])
        # Only the columns we keep are checked; status and image are informational.
        for what, tok in (("physical id", physical), ("hardware type", hardware)):
            if tok and not _TOKEN.match(tok):
                raise bad(f"bad {what} {tok!r}")
        try:
            user, host, port, options = _parse_ssh(fields[at:])
        except ValueError as exc:
            raise bad(str(exc)) from None
        seen[name] = lineno
        machines.append(
            Machine(
                name=name,
                role=role,
                index=index,
                physical_id=physical,
                hardware_type=hardware,
                ssh_user=user,
                ssh_host=host,
                ssh_port=port,
                ssh_options=options,
            )
        )
    if not machines:
        raise MachineListError(f"{source}: no machines listed")
    return Cluster(tuple(machines))


def read_list_file(path: str | Path) -> str:
    """A list view's or machine_info.txt's text; MachineListError (one line) if unreadable."""
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise MachineListError(f"{path}: cannot read: {exc.strerror}") from None


def load_list_view(path: str | Path) -> Cluster:
    return parse_list_view(read_list_file(path), str(path))


# ---- machine_info.txt --------------------------------------------------------------------
#
# The original's layout (setup/parse_machine_list.py), one machine a line, seven fields
# separated by a bare comma:
#   name,physical id,experiment iface,MAC,experiment IP,control IP,experiment iface 2
# Scripts that read the original file index these seven columns, so ours keeps them in place
# (written with ", ") and appends what an SSH transport needs (ssh host, port, user) as
# columns 8-10 and the node's work directory as column 11 (so a renamed machine still finds
# its venv). Both are read; an original file is reached at each control IP.

_INFO_COLUMNS = 7
_OURS_COLUMNS = 11
ORIGINAL_FORMAT = "the original's 7-column format"
OURS_FORMAT = "masonctl setup's 11-column format"


def format_machine_info(cluster: Cluster) -> str:
    lines = []
    for m in cluster:
        cols = [m.name, m.physical_id, m.experiment_iface, m.mac, m.experiment_ip,
                m.control_ip, m.experiment_iface2, m.ssh_host, str(m.ssh_port), m.ssh_user,
                m.workdir]
        lines.append(", ".join(cols))
    return "\n".join(lines) + "\n"


def write_machine_info(cluster: Cluster, path: str | Path) -> None:
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(format_machine_info(cluster))
    tmp.replace(target)  # a reader never sees half a file


def _ip_or_empty(text: str, what: str) -> str:
    if text:
        try:
            ipaddress.IPv4Address(text)
        except ValueError:
            raise ValueError(f"bad {what} {text!r}") from None
    return text


def parse_machine_info(text: str, source: str = "machine_info.txt") -> Cluster:
    machines: list[Machine] = []
    seen: dict[str, int] = {}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        cols = [c.strip() for c in line.split(",")]
        where = f"{source}:{lineno}"
        if len(cols) < _INFO_COLUMNS - 1:
            raise MachineListError(
                f"{where}: expected 'name, physical id, iface, MAC, experiment IP, control IP"
                f"[, iface 2[, ssh host, ssh port, ssh user[, workdir]]]', got {len(cols)} "
                "fields"
            )
        if len(cols) > _OURS_COLUMNS:
            raise MachineListError(f"{where}: {len(cols)} fields; at most {_OURS_COLUMNS}")
        cols += [""] * (_OURS_COLUMNS - len(cols))
        (name, physical, iface, mac, exp_ip, ctl_ip, iface2, ssh_host, ssh_port, ssh_user,
         workdir) = cols
        try:
            role, index = role_of(name)
            if name in seen:
                raise ValueError(f"duplicate node name {name!r} (first on line {seen[name]})")
            if physical and not _TOKEN.match(physical):
                raise ValueError(f"bad physical id {physical!r}")
            for nic in (iface, iface2):
                if nic:
                    check_iface(nic)
            if mac and not _MAC.match(mac.lower()):
                raise ValueError(f"bad MAC address {mac!r}")
            _ip_or_empty(exp_ip, "experiment IP")
            _ip_or_empty(ctl_ip, "control IP")
            # An original file has no ssh columns: the control address is how it was reached.
            host = ssh_host or ctl_ip
            if host and not _HOST.match(host):
                raise ValueError(f"bad ssh host {host!r}")
            port = _port(ssh_port) if ssh_port else 22
            if ssh_user and not _USER.match(ssh_user):
                raise ValueError(f"bad ssh user {ssh_user!r}")
            if workdir:
                check_workdir(workdir)
        except ValueError as exc:
            raise MachineListError(f"{where}: {exc}") from None
        seen[name] = lineno
        machines.append(
            Machine(
                name=name, role=role, index=index, physical_id=physical,
                experiment_iface=iface, mac=mac.lower(), experiment_ip=exp_ip,
                control_ip=ctl_ip, experiment_iface2=iface2, ssh_host=host,
                ssh_port=port, ssh_user=ssh_user, workdir=workdir,
            )
        )
    if not machines:
        raise MachineListError(f"{source}: no machines listed")
    return Cluster(tuple(machines))


def machine_info_format(text: str) -> str:
    """Which layout a machine_info.txt is in, for the one line a run prints: the original's
    (no ssh columns: each machine is reached at its control IP), ours, or a mix of both."""
    widths = {len(line.split(",")) for raw in text.splitlines()
              if (line := raw.strip()) and not line.startswith("#")}
    if widths and max(widths) <= _INFO_COLUMNS:
        return f"{ORIGINAL_FORMAT} (ssh to each control IP)"
    if widths and min(widths) > _INFO_COLUMNS:
        return OURS_FORMAT
    return f"a mix of {ORIGINAL_FORMAT} and {OURS_FORMAT}"


def read_machine_info(path: str | Path) -> Cluster:
    return parse_machine_info(read_list_file(path), str(path))
