/**
 * `npm start` and the image's entry: the `tidings` command (no arguments =
 * run the role TIDINGS_ROLE names, gateway and presence in one process by
 * default; memory engine unless NATS_URL is set).
 */
import { main } from "./cli/main.js";

await main(process.argv.slice(2));
