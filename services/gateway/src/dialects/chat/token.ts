import { TokenError, verifyJwt } from "../../../../../shared/src/auth/jwt.js";
import { isValidUserId, USER_ID_RULE } from "../../../../../shared/src/channels.js";
import type { AppConfig } from "../../../../../shared/src/config/apps.js";

/** What a verified Chat token grants. */
export interface ChatGrant {
  userId: string;
  /** The users whose online/offline this user receives. */
  contacts: string[];
  expiresAtMs: number;
}

/** `sub` is the user; `contacts` the users whose online/offline it receives. */
export async function verifyChatToken(token: string, app: AppConfig): Promise<ChatGrant> {
  const claims = await verifyJwt(token, app);
  const sub = claims.sub;
  if (typeof sub !== "string" || sub === "") throw new TokenError("token has no sub");
  if (!isValidUserId(sub)) throw new TokenError(`sub must be ${USER_ID_RULE}`);
  const contacts = claims.contacts ?? [];
  if (!Array.isArray(contacts) || !contacts.every(isValidUserId))
    throw new TokenError(`token claim contacts must be an array of user ids (${USER_ID_RULE})`);
  return { userId: sub, contacts, expiresAtMs: claims.exp * 1000 };
}
