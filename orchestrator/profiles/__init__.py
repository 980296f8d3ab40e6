"""Testbed profiles: the geni-lib portal script to paste into Emulab/CloudLab, and the request
RSpec it produces, rendered here so it can be checked (and used with other tools) offline.

The portal script is rendered from `profile.py.j2`; the RSpec is built with `geni.rspec.pg`
directly, because geni-lib's `geni.portal` (0.9.9.4) is Python 2 code and cannot be imported.
Both follow one layout: nodes `sequencer-i`, `proxy-i`, `client-i`, `server-i` (in that order),
each with one interface on a single LAN at 10.1.1.<k> (k = 1, 2, ...), as on Emulab. With
`original_links` each node has the original profile's two experiment interfaces instead,
10.1.1.<k> and 10.1.2.<k>, both on one 10 Gb link. The portal parameters keep the original
profile's names (`s`, `p`, `c`, `cs`), so its saved parameter sets still apply. The node
counts (the README's largest configuration of each system) come from the registry,
orchestrator/systems/.
"""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from orchestrator import systems
from orchestrator.spec import SpecError
from orchestrator.systems import MACHINE_ROLES, Counts, System
from orchestrator.systems.base import COUNT_FIELD

MAX_NODES = 253  # one /24 LAN, .1 to .253
LAN_NAME = "lan"
LAN_PREFIX = "10.1.1"  # profile text only: the address plan of the testbed's own LAN
# The original profile's link: both interfaces of every node on it, 10 Gb (in kbit/s).
ORIGINAL_LINK_NAME = "tblink-l3"
ORIGINAL_PREFIXES = ("10.1.1", "10.1.2")
ORIGINAL_BANDWIDTH_KBPS = 10_000_000
# The original profile's parameter names, one per role.
PARAMETERS = {"sequencer": "s", "proxy": "p", "client": "c", "server": "cs"}
NETMASK = "255.255.255.0"
DEFAULT_HARDWARE = "d430"
DEFAULT_IMAGE = "urn:publicid:IDN+emulab.net+image+emulab-ops//UBUNTU22-64-STD"


class ProfileError(ValueError):
    """Bad profile input; the message is one line."""


def system_named(name: str) -> System:
    """The registry's system for a name or alias (its title, description, largest counts)."""
    try:
        return systems.get(name)
    except SpecError as exc:
        raise ProfileError(str(exc)) from None


def resolve_counts(
    system: System,
    nsequencers: int | None = None,
    nproxies: int | None = None,
    nclients: int | None = None,
    nservers: int | None = None,
) -> Counts:
    """The system's largest configuration with any given count replacing its default."""
    base = system.largest
    counts = Counts(
        base.nsequencers if nsequencers is None else nsequencers,
        base.nproxies if nproxies is None else nproxies,
        base.nclients if nclients is None else nclients,
        base.nservers if nservers is None else nservers,
    )
    for role in MACHINE_ROLES:
        if counts.of(role) < 0:
            raise ProfileError(f"--{COUNT_FIELD[role]} (--{PARAMETERS[role]}) must not be "
                               "negative")
    if not 1 <= counts.total <= MAX_NODES:
        raise ProfileError(f"a profile has 1 to {MAX_NODES} nodes (one /24 LAN), "
                           f"not {counts.total}")
    return counts


def _check_text(what: str, value: str) -> str:
    # Both go into the script as string literals and into XML attributes.
    if not value or any(c in value for c in "\"'\\\n\r<>&") or not value.isprintable():
        raise ProfileError(f"bad {what} {value!r}")
    return value


def node_plan(counts: Counts, original_links: bool = False) -> list[tuple[str, list[str]]]:
    """(node name, its experiment addresses) for every node, in the profile's order: one
    address on the LAN, or with original_links one on each of the original's two subnets."""
    prefixes = ORIGINAL_PREFIXES if original_links else (LAN_PREFIX,)
    names = [f"{role}-{i}" for role in MACHINE_ROLES for i in range(counts.of(role))]
    return [(name, [f"{prefix}.{k}" for prefix in prefixes])
            for k, name in enumerate(names, start=1)]


def render_script(system: System, counts: Counts, hardware_type: str = DEFAULT_HARDWARE,
                  image: str = DEFAULT_IMAGE, original_links: bool = False) -> str:
    env = Environment(
        loader=FileSystemLoader(Path(__file__).parent),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # the output is Python source, not HTML
    )
    return env.get_template("profile.py.j2").render(
        system=system.name,
        title=system.title,
        description=system.description,
        counts=counts,
        hardware_type=_check_text("hardware type", hardware_type),
        image=_check_text("image", image),
        max_nodes=MAX_NODES,
        lan_name=LAN_NAME,
        lan_prefix=LAN_PREFIX,
        netmask=NETMASK,
        parameters=PARAMETERS,
        original_links=original_links,
        original_link_name=ORIGINAL_LINK_NAME,
        original_prefixes=ORIGINAL_PREFIXES,
        original_bandwidth=ORIGINAL_BANDWIDTH_KBPS,
    )


def build_rspec(counts: Counts, hardware_type: str = DEFAULT_HARDWARE,
                image: str = DEFAULT_IMAGE, original_links: bool = False) -> str:
    """The request RSpec (XML) the portal script produces with these parameters."""
    import geni.rspec.emulab  # noqa: F401  (registers the LAN and routing extensions)
    import geni.rspec.pg as pg

    _check_text("hardware type", hardware_type)
    _check_text("image", image)
    request = pg.Request()
    request.setRoutingStyle("static")
    if original_links:
        lan = request.Link(ORIGINAL_LINK_NAME)
        lan.trivial_ok = True
        lan.bandwidth = ORIGINAL_BANDWIDTH_KBPS
    else:
        lan = request.LAN(LAN_NAME)
    lan.setNoBandwidthShaping()
    for name, addresses in node_plan(counts, original_links):
        node = request.RawPC(name)
        node.hardware_type = hardware_type
        node.disk_image = image
        for n, address in enumerate(addresses, start=1):
            iface = node.addInterface(f"if{n}")
            iface.addAddress(pg.IPv4Address(address, NETMASK))
            lan.addInterface(iface)
    xml = request.toXMLString(pretty_print=True, ucode=True)
    return xml if isinstance(xml, str) else xml.decode()


def write_profile(system: System, counts: Counts, out_dir: Path,
                  hardware_type: str = DEFAULT_HARDWARE,
                  image: str = DEFAULT_IMAGE, original_links: bool = False) -> tuple[Path, Path]:
    """Write `<system>.profile.py` and `<system>.rspec.xml` into out_dir."""
    script = render_script(system, counts, hardware_type, image, original_links)
    rspec = build_rspec(counts, hardware_type, image, original_links)
    out_dir.mkdir(parents=True, exist_ok=True)
    script_path = out_dir / f"{system.name}.profile.py"
    rspec_path = out_dir / f"{system.name}.rspec.xml"
    script_path.write_text(script)
    rspec_path.write_text(rspec)
    return script_path, rspec_path
