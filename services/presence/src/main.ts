/**
 * `npm run start:presence`: the presence service alone, on NATS. Run as
 * many as you like; they split the partitions between them and take over
 * each other's within a lease TTL (see services/presence/README.md).
 */
import { fatal, run } from "../../runtime.js";

run("presence").catch(fatal);
