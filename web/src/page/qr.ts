/**
 * The QR code of an item's page, drawn in the browser as inline SVG (no image request,
 * no CDN): @paulmillr/qr makes the module grid, bundled at build time. It encodes the
 * link a tag should carry: this page's address with `?vs=<validator set hash>`, so
 * whoever scans it checks the history against the validators it was printed for
 * (docs/page.md section 3.5). `chainmall mall product qr` prints the same link with segno.
 */
import encodeQR from '@paulmillr/qr';

const SVG = 'http://www.w3.org/2000/svg';
export const QR_QUIET_MODULES = 4;

/** The module grid of `text` (true: dark), medium error correction, no border. */
export function qrModules(text: string): boolean[][] {
  return encodeQR(text, 'raw', { ecc: 'medium', border: 0 });
}

/** An SVG element of `text`'s QR code, with its quiet zone; `label` names it for screen readers. */
export function qrSvg(text: string, label: string): SVGSVGElement {
  const grid = qrModules(text);
  const size = grid.length + 2 * QR_QUIET_MODULES;
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', `0 0 ${size} ${size}`);
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', label);
  svg.setAttribute('shape-rendering', 'crispEdges');
  svg.setAttribute('class', 'qr');
  svg.dataset.url = text;
  const background = document.createElementNS(SVG, 'rect');
  background.setAttribute('width', String(size));
  background.setAttribute('height', String(size));
  background.setAttribute('fill', '#fff');
  let d = '';
  grid.forEach((row, y) => row.forEach((dark, x) => {
    if (dark) d += `M${x + QR_QUIET_MODULES} ${y + QR_QUIET_MODULES}h1v1h-1z`;
  }));
  const path = document.createElementNS(SVG, 'path');
  path.setAttribute('d', d);
  path.setAttribute('fill', '#000');
  svg.append(background, path);
  return svg;
}
