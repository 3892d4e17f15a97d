/**
 * `npm run start:presence`: the presence service alone, on NATS. Run as
 * many as you like; they split the partitions between them and take over
 * each other's within a lease TTL (see services/presence/README.md).
 */
import { main } from "../../cli/main.js";

await main(["start", "presence", ...process.argv.slice(2)]);
