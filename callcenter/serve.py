"""`callcenter serve`: the composition root. Wires the user store (apps) into the
switch's SIP service and the web app (uvicorn in the same event loop), seeds demo data
on a first start, runs until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import math
import signal
import sys
from datetime import UTC, datetime

from apps import (
    ApiTokenService,
    AuditLog,
    ContactRecordService,
    CustomerService,
    Database,
    GroupService,
    PermissionService,
    UserService,
    VipLevels,
    WebSessionStore,
    seed_demo_data,
    upgrade_database,
)
from apps.cdr_writer import CdrWriter
from apps.cdrs import CdrStore
from apps.customer_import import CustomerImporter
from apps.demo import DEMO_GROUPS, seed_demo_customers, seed_demo_queue
from apps.queues import QueueService
from callcenter.audio_assets import ensure_music_on_hold
from callcenter.data_dir import secure_data_dir
from switch.applications import ApplicationRunner, play_prompt
from switch.calls import CallSettings
from switch.config import Config
from switch.dialplan import Dialplan
from switch.media import MediaEngine
from switch.pri_gateway import Gateway, GatewayHealth, TrunkGroup, Trunks
from switch.signalling import SipService, SipSettings
from switch.sip import Credentials
from web import WebError, WebServer, WebServices, WebSettings, create_app, load_or_create_secret
from web.admin import NAV as ADMIN_NAV
from web.admin import AdminServices, RegisteredExtensions
from web.admin import routes as admin_routes
from web.customer_import_routes import NAV as IMPORT_NAV
from web.customer_import_routes import ImportWebServices
from web.customer_import_routes import routes as import_routes
from web.customers import NAV as CUSTOMER_NAV
from web.customers import CustomerWebServices
from web.customers import routes as customer_routes

log = logging.getLogger("callcenter")

CDR_BATCH_WINDOW_S = 0.25  # CDR changes are committed at most this late (in batches)
# The cyclic garbage collector's first threshold. Python's default (700 allocations)
# runs it thousands of times a second under call load, and each full collection walks
# every object of every call up: pauses of 100+ ms that show as SIP retransmissions.
# Calls make little cyclic garbage; collecting less often costs some memory.
GC_THRESHOLD_0 = 50_000


def sip_settings(config: Config) -> SipSettings:
    sip = config.sip
    return SipSettings(
        listen=tuple((hp.host, hp.port) for hp in sip.listen),
        realm=sip.realm,
        user_agent=sip.user_agent,
        max_message_bytes=sip.max_message_bytes,
        max_tcp_connections=sip.max_tcp_connections,
        min_expires_s=sip.min_expires_s,
        max_expires_s=sip.max_expires_s,
        default_expires_s=sip.default_expires_s,
        auth_algorithms=tuple(sip.auth.algorithms),
        nonce_ttl_s=float(sip.auth.nonce_ttl_s),
        ban_max_failures=sip.bans.max_failures,
        ban_window_s=float(sip.bans.window_s),
        ban_s=float(sip.bans.ban_s),
        ban_whitelist=tuple(str(network) for network in sip.bans.whitelist),
    )


def web_server(config: Config, users: UserService, db: Database,
               customers: CustomerService,
               registered_extensions: RegisteredExtensions | None = None) -> WebServer:
    """The web app on the apps services; ``registered_extensions`` is the switch's
    read-only view of which phones are registered (for the user list)."""
    web = config.web
    audit = AuditLog(db)
    permissions = PermissionService(db, audit)
    admin = AdminServices(users, GroupService(db, audit), permissions, audit,
                          registered_extensions=registered_extensions,
                          queues=QueueService(db, audit))
    customer_pages = CustomerWebServices(customers, ContactRecordService(db), users, audit)
    importer = CustomerImporter(db, default_area_code=config.customers.default_area_code or None,
                                vip_levels=customers.vip_levels)
    imports = ImportWebServices(importer, audit, config.data.dir / "imports")
    services = WebServices(
        users=users,
        sessions=WebSessionStore(db, idle_timeout_s=web.session_max_age_s),
        tokens=ApiTokenService(db, audit),
        permissions_of=permissions.effective,
        audit=audit,
        secret_key=load_or_create_secret(config.data.dir),
        settings=WebSettings(
            session_max_age_s=web.session_max_age_s,
            secure_cookies=web.secure_cookies,
            login_max_failures=web.login_max_failures,
            login_address_max_failures=web.login_address_max_failures,
            login_window_s=float(web.login_window_s),
            login_user_delay_s=web.login_user_delay_s,
            timezone=web.timezone,
        ),
    )
    app = create_app(
        services,
        routes=[*admin_routes(admin), *customer_routes(customer_pages),
                *import_routes(imports)],
        nav=(*ADMIN_NAV, *CUSTOMER_NAV, *IMPORT_NAV))
    return WebServer(app, web.listen.host, web.listen.port)


def trunks_from(config: Config) -> Trunks:
    gateways = {g.name: Gateway(g.name, g.host, g.port, g.transport.upper(), g.spans)
                for g in config.gateways}
    groups = [TrunkGroup(group.name, [gateways[name] for name in group.gateways])
              for group in config.trunk_groups]
    keepalive_s = {g.name: g.keepalive_s for g in config.gateways}
    # A gateway that stops answering is probed more often, so it is back in the
    # rotation soon after it recovers.
    return Trunks(groups, gateways.values(), make_health=lambda name: GatewayHealth(
        name, interval_s=keepalive_s[name], down_interval_s=min(10.0, keepalive_s[name])))


def call_settings(config: Config) -> CallSettings:
    calls = config.calls
    prompts = config.data.dir / "prompts"
    moh = config.media.music_on_hold or str(ensure_music_on_hold(prompts))
    recordings = config.data.dir / "recordings"

    def recording_path(call_id: str) -> str:
        day = recordings / datetime.now(UTC).strftime("%Y/%m/%d")
        day.mkdir(parents=True, exist_ok=True)
        return str(day / f"{call_id}.wav")

    return CallSettings(
        ring_timeout_s=calls.ring_timeout_s,
        max_duration_s=calls.max_duration_s or math.inf,
        session_expires_s=calls.session_expires_s or None,
        min_se_s=calls.min_se_s,
        music_on_hold=moh,
        recording_path=recording_path,
        # A route's recording = "..." overrides this (switch.dialplan).
        recording="always" if config.recording.enabled else "never",
    )


async def run(config: Config, *, ready: asyncio.Event | None = None) -> None:
    # Handlers first: a supervisor may signal as soon as it reads the listening lines.
    stop = asyncio.Event()
    hurry = asyncio.Event()  # a second signal: do not wait for calls to end
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        (hurry if stop.is_set() else stop).set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal)
    await upgrade_database(config.database.url)
    db = await Database.connect(config.database.url)
    users = UserService(db, config.sip.realm)
    demo = await seed_demo_data(users)
    if demo:
        print("Demo accounts created (passwords are shown only this once):", flush=True)
        for account in demo:
            where = f"extension {account.extension}" if account.extension else "web only"
            print(
                f"  {account.username:<10} {account.role.value:<16} {where:<16} "
                f"password {account.password}",
                flush=True,
            )
        async with CustomerService(db) as customers:
            count = await seed_demo_customers(customers, ContactRecordService(db), users)
        print(f"Demo customers created: {count} members of {len(DEMO_GROUPS)} enterprise "
              "groups (try searching 13900000001 in the web UI)", flush=True)
        queue = await seed_demo_queue(QueueService(db, AuditLog(db)))
        print(f"Demo queue created: {queue} (服务台) with the demo agents", flush=True)

    async def lookup(username: str) -> Credentials | None:
        found = await users.sip_credentials(username)
        if found is None:
            return None
        return Credentials(found.username, found.realm, found.ha1_md5, found.ha1_sha256)

    settings = sip_settings(config)
    sip_host = settings.listen[0][0]
    media_address = _media_address(sip_host)
    # One worker for now; RTP is bound where SIP listens (wildcards bind everywhere).
    engine = MediaEngine(workers=1, port_range=config.rtp.ports,
                         bind_host=media_address if media_address == sip_host else "0.0.0.0",
                         wakeup_window_us=config.rtp.wakeup_window_us,
                         relatch_silence_s=config.rtp.relatch_silence_s)
    engine.start()
    cdrs = CdrWriter(CdrStore(db), batch_window_s=CDR_BATCH_WINDOW_S)
    await cdrs.start()  # closes calls a crash left open, before any new call
    applications = ApplicationRunner({"prompt": play_prompt},
                                     prompts_dir=str(config.data.dir / "prompts"))
    service = SipService(settings, lookup, engine=engine,
                         dialplan=Dialplan.from_config(config), media_address=media_address,
                         trunks=trunks_from(config), call_settings=call_settings(config),
                         start_application=applications.start,
                         on_channel_events=applications.deliver)
    cdrs.subscribe(service.bus)  # CDRs are written from the event bus
    applications.attach(service)
    area_code = config.customers.default_area_code or None
    # One per process: it keeps a connection of its own for caller lookups.
    customers = CustomerService(db, default_area_code=area_code,
                                vip_levels=VipLevels(config.customers.vip_levels))
    web = web_server(config, users, db, customers, service.registered_extensions)
    loop.add_reader(engine.events_fd, service.on_media_events)
    try:
        await service.start()
        try:
            await web.start()
        except BaseException:
            await service.stop()
            raise
    except BaseException:
        loop.remove_reader(engine.events_fd)
        engine.stop()
        await cdrs.stop()
        await customers.close()
        await db.close()
        raise
    # What startup allocated lives until exit: keep it out of every future collection.
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD_0, *gc.get_threshold()[1:])
    for line in service.listening():
        print(f"SIP listening on {line} (realm {config.sip.realm!r})", flush=True)
    print(f"Web UI on {web.url}", flush=True)
    print(f"Database: {_without_password(config.database.url)}", flush=True)
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
        print("Shutting down", flush=True)
        await service.drain(config.calls.drain_timeout_s, hurry)
    finally:
        await web.stop()  # before our signal handlers go: a second SIGTERM only hurries
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        await applications.stop()
        await service.stop()
        loop.remove_reader(engine.events_fd)
        engine.stop()
        await cdrs.stop()
        await customers.close()
        await db.close()


def _media_address(sip_host: str) -> str:
    """The address our SDP advertises. The engine is IPv4 only, and there is no setting
    for an advertised address yet: with a wildcard or IPv6 SIP address, say loopback."""
    if "." in sip_host and sip_host != "0.0.0.0":
        return sip_host
    log.warning("SIP listens on %s: SDP advertises 127.0.0.1 for RTP", sip_host)
    return "127.0.0.1"


def _without_password(url: str) -> str:
    """postgresql://user:secret@host/db -> postgresql://user:***@host/db"""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in credentials:
        return url
    return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}"


def serve(config: Config) -> int:
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # What only the whole dialplan can tell (a ring group target no route reaches) is a
    # ConfigError too: before anything starts.
    Dialplan.from_config(config)
    try:
        secure_data_dir(config.data.dir)  # before anything in it is opened
    except OSError as error:
        print(f"callcenter: cannot use the data directory {config.data.dir}: "
              f"{error.strerror or error}", file=sys.stderr)
        return 1
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a hard dependency
        runner = asyncio.run
    else:
        runner = uvloop.run
    try:
        with contextlib.suppress(KeyboardInterrupt):
            runner(run(config))
    except WebError as error:  # e.g. the web port is taken: say so, no traceback
        print(f"callcenter: {error}", file=sys.stderr)
        return 1
    return 0
