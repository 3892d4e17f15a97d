/**
 * A WebSocket close code as a small, fixed set of classes, so the closes
 * metric can say why connections end without one series per code.
 */
export function closeReason(code: number): string {
  if (code === 1000 || code === 1005) return "normal";
  if (code === 1001) return "going_away";
  if (code === 1006) return "abnormal";
  if (code === 1008) return "policy";
  if (code === 1009) return "too_large";
  if (code === 1011 || code === 1012 || code === 1013) return "server";
  if (code >= 1002 && code <= 1015) return "protocol";
  if (code >= 4000 && code <= 4999) return "app";
  return "other";
}
