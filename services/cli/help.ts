/** Help texts: what `tidings --help` and `tidings COMMAND --help` print. */

export const MAIN_HELP = `Usage: tidings [COMMAND] [options]

Commands:
  start [ROLE]     Run Tidings; the default when no command is given. ROLE:
                     all       gateway and presence in one process (the default;
                               in-memory engine unless NATS_URL is set)
                     gateway   WebSocket and HTTP gateway only (needs NATS_URL)
                     presence  presence service only (needs NATS_URL)
                   Without ROLE, TIDINGS_ROLE decides (default all).
  token DIALECT    Mint a development token for herald, broadcaster, chat or
                   foony, or a Pusher channel or sign-in signature (pusher),
                   signed with the app's secret. See: tidings token --help
  config           Print the effective configuration as JSON, secrets masked,
                   after checking it as start would.
  help [COMMAND]   Show this help, or a command's.

Options:
  -h, --help       Show help (never starts a server).
  -v, --version    Print the version.

Every setting comes from the environment, or from the JSON file named by
TIDINGS_CONFIG_FILE; the README's Configuration section lists them.
Exit status: 0 ok, 1 failed at run time, 2 bad usage or configuration.
`;

export const START_HELP = `Usage: tidings start [all|gateway|presence]

Runs a Tidings process until SIGTERM or SIGINT, then drains (clients are asked
to reconnect over TIDINGS_DRAIN_SECONDS) and exits. The role given here wins
over TIDINGS_ROLE. gateway and presence need NATS_URL; all without NATS_URL
runs everything in one process on the in-memory engine.
`;

export const TOKEN_HELP = `Usage: tidings token DIALECT --user ID [options]

Prints a credential for one user of one app on stdout, signed with the app's
secret (HS256 for JWTs). Apps come from TIDINGS_APPS, as for start; without
it, the development app. For RS256/ES256 tokens, sign with your own key.

Dialects and what they print:
  herald       a compact token (EXP.HMAC) for ?token=, to be sent with the same
               user_id and streams as minted; --jwt for a JWT (claims sub,
               streams, watchlist, exp) that also accepts "*"-suffixed prefixes
  broadcaster  a JWT for auth {token}: aud "broadcaster", sub, iat, exp,
               authorizedChannels (--channels), scope (--scope)
  chat         a JWT for /chat/APP_KEY?token=: sub, exp, contacts (--contacts)
  foony        a JWT for {t:"auth", token}: kid = the app key, sub, exp,
               capability {CHANNEL: OPS} for each of --channels
  pusher       Pusher has no tokens: prints the JSON your auth endpoint
               returns, {"auth"[, "channel_data"]} for --socket-id and a
               private-/presence- --channel (presence needs --user), or
               {"auth", "user_data"} for pusher:signin with --signin --user

Options:
  --app ID            App id or key (needed when there is more than one app)
  --user ID           The user (sub, user_id, clientId)
  --channels A,B      Channels/streams granted; "*" or a "*" suffix = prefix
                      (JWTs only). Default: none
  --expires DURATION  Lifetime: seconds, or with s, m, h or d (default 1h)
  --jwt               herald: a JWT instead of a compact token
  --watchlist A,B     herald --jwt: users whose online/offline the user gets
  --scope S,S         broadcaster: subscribe and/or publish (default both)
  --contacts A,B      chat: users whose online/offline the user gets
  --ops O,O           foony: operations on each channel, from subscribe,
                      publish, presence, history (default all four)
  --claims JSON       Extra claims merged into a JWT (e.g. user_info)
  --socket-id ID      pusher: the socket_id from pusher:connection_established
  --channel NAME      pusher: the private- or presence- channel
  --user-info JSON    pusher: user_info for presence channel_data or signin
  --signin            pusher: sign user_data for pusher:signin

Examples:
  tidings token herald --user u1 --channels room-1
  tidings token broadcaster --user u1 --channels 'news,sport-*' --expires 10m
  tidings token pusher --socket-id 123.456 --channel presence-room --user u1
`;

export const CONFIG_HELP = `Usage: tidings config

Loads the configuration exactly as start does (environment, then
TIDINGS_CONFIG_FILE), and prints it as JSON with every secret masked: app
secrets and API keys, NATS_PASS, NATS_TOKEN and passwords in webhook URLs.
Warnings go to stderr. A configuration start would refuse is reported the
same way (exit status 2).
`;
