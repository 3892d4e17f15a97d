/** `npm start`: gateway and presence in one process (memory engine unless NATS_URL is set). */
import { fatal, run } from "./runtime.js";

run().catch(fatal);
