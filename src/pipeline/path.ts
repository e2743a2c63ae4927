/** Request-path checks that must hold before a path is routed or forwarded. */

/**
 * A path the gateway must not forward because a backend could resolve it outside the route's
 * prefix: any raw backslash (many servers treat `\` as `/`, so `/pub/x\..\..\api` would walk out
 * of `/pub`), or a `.`/`..` segment spelled plainly, percent-encoded, split by an encoded `\` or
 * `/`, or followed by `;params` (`/..;/`, which Tomcat-style servers resolve as `..`). An encoded
 * backslash that forms no dot segment (`/file%5cname`) is data and passes. A malformed percent
 * escape is refused too: its meaning to the backend is unknown.
 */
export function isUnsafePath(path: string): boolean {
  if (path.includes('\\')) return true;
  if (path.includes('/.') && hasDotSegment(path.split('/'))) return true;
  if (path.includes('%')) {
    let decoded: string;
    try {
      decoded = decodeURIComponent(path);
    } catch {
      return true;
    }
    if (hasDotSegment(decoded.split(/[/\\]/))) return true;
  }
  return false;
}

function hasDotSegment(segments: string[]): boolean {
  for (let seg of segments) {
    const semi = seg.indexOf(';');
    if (semi !== -1) seg = seg.slice(0, semi);
    if (seg === '.' || seg === '..') return true;
  }
  return false;
}
