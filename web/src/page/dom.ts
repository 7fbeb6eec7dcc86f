/** A small element builder: every string becomes a text node, so node data never becomes markup. */

export type Child = Node | string | null | undefined | false | Child[];

function append(parent: Node, child: Child): void {
  if (child === null || child === undefined || child === false) return;
  if (Array.isArray(child)) child.forEach((c) => append(parent, c));
  else parent.appendChild(typeof child === 'string' ? document.createTextNode(child) : child);
}

/** `<tag attrs...>children</tag>`; attributes with a null, undefined or false value are left out. */
export function h(tag: string, attrs: Record<string, string | null | undefined | false> = {}, ...children: Child[]): HTMLElement {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== null && value !== undefined && value !== false) element.setAttribute(name, value);
  }
  append(element, children);
  return element;
}

/** Replace everything inside `parent`. */
export function show(parent: HTMLElement, ...children: Child[]): void {
  parent.replaceChildren();
  append(parent, children);
}
