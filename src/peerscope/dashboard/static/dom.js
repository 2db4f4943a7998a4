// Building DOM from data: elements and text nodes only, never HTML parsed from strings, so a
// peer named "<img src=x onerror=...>" is shown as those characters.

// el("td", {className: "num"}, "12 ms", child) -> <td class="num">12 ms{child}</td>
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "dataset") Object.assign(node.dataset, value);
    else node[key] = value;
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

// Set a node's text only when it changed (the table rewrites hundreds of cells a second).
export function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}
