/** `npm run start:gateway`: a gateway alone, on NATS (presence runs elsewhere). */
import { fatal, run } from "../../runtime.js";

run("gateway").catch(fatal);
