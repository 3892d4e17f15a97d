/** `npm run start:gateway`: a gateway alone, on NATS (presence runs elsewhere). */
import { main } from "../../cli/main.js";

await main(["start", "gateway", ...process.argv.slice(2)]);
