/**
 * The little XML that S3 responses need: elements, text, the five named
 * entities and numeric character references, CDATA; comments and the XML
 * declaration skipped. Attributes are read past and dropped (no S3 response
 * field this client reads is an attribute), namespace prefixes dropped from
 * names. A DOCTYPE is refused: no entity of the server's own is expanded.
 */

/** One element: its local name, its child elements in order, and its text (decoded). */
export interface XmlElement {
  /** The element's name without a namespace prefix. */
  name: string;
  /** Child elements in document order. */
  children: XmlElement[];
  /** The element's own text content, entities decoded, without its children's text. */
  text: string;
}

/** Matches a start or empty-element tag at the parser's position. */
const START_TAG = /<([A-Za-z_][\w.\-:]*)((?:\s+[^\s=/>]+\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*(\/?)>/y;

/** Matches an end tag at the parser's position. */
const END_TAG = /<\/([A-Za-z_][\w.\-:]*)\s*>/y;

/** Matches one entity or character reference. */
const REFERENCE = /&(?:#x([0-9A-Fa-f]{1,6})|#([0-9]{1,7})|(amp|lt|gt|quot|apos));/g;

/** The named entities XML defines without a DTD. */
const NAMED_ENTITIES: Record<string, string> = {
  amp: "&",
  lt: "<",
  gt: ">",
  quot: '"',
  apos: "'",
};

/**
 * Parses `text` and returns its root element; throws SyntaxError when it is
 * not well-formed in the ways this parser checks (tags nest and close, one
 * root, no stray `<` or `&`).
 *
 * @example
 * ```ts
 * import { parseXml } from "./xml.ts";
 * const root = parseXml('<?xml version="1.0"?><A x="1"><B>a &amp; b</B><C/></A>');
 * console.assert(root.name === "A" && root.children[0]!.text === "a & b");
 * ```
 */
export function parseXml(text: string): XmlElement {
  const stack: XmlElement[] = [];
  let root: XmlElement | null = null;
  let at = 0;
  while (at < text.length) {
    const lt = text.indexOf("<", at);
    const chunk = text.slice(at, lt === -1 ? text.length : lt);
    const top = stack.at(-1);
    if (top) top.text += decodeReferences(chunk);
    else if (chunk.trim() !== "") throw new SyntaxError("XML: text outside the root element");
    if (lt === -1) break;
    at = lt;
    if (text.startsWith("<?", at)) {
      at = endOf(text, "?>", at);
    } else if (text.startsWith("<!--", at)) {
      at = endOf(text, "-->", at);
    } else if (text.startsWith("<![CDATA[", at)) {
      const end = endOf(text, "]]>", at);
      if (!top) throw new SyntaxError("XML: CDATA outside the root element");
      top.text += text.slice(at + "<![CDATA[".length, end - "]]>".length);
      at = end;
    } else if (text.startsWith("<!", at)) {
      throw new SyntaxError("XML: declarations (DOCTYPE) are not accepted");
    } else if (text.startsWith("</", at)) {
      END_TAG.lastIndex = at;
      const match = END_TAG.exec(text);
      const open = stack.pop();
      if (!match || !open || localName(match[1]!) !== open.name) {
        throw new SyntaxError(`XML: unexpected end tag at ${at}`);
      }
      at = END_TAG.lastIndex;
    } else {
      START_TAG.lastIndex = at;
      const match = START_TAG.exec(text);
      if (!match) throw new SyntaxError(`XML: malformed tag at ${at}`);
      const element: XmlElement = { name: localName(match[1]!), children: [], text: "" };
      if (top) top.children.push(element);
      else if (root) throw new SyntaxError("XML: more than one root element");
      else root = element;
      if (match[3] !== "/") stack.push(element);
      at = START_TAG.lastIndex;
    }
  }
  if (!root || stack.length > 0) throw new SyntaxError("XML: document ends inside an element");
  return root;
}

/** The first child of `element` named `name`, if any. */
export function xmlChild(element: XmlElement, name: string): XmlElement | undefined {
  return element.children.find((child) => child.name === name);
}

/** Every child of `element` named `name`, in order. */
export function xmlChildren(element: XmlElement, name: string): XmlElement[] {
  return element.children.filter((child) => child.name === name);
}

/** The text of the first child of `element` named `name`, or undefined without one. */
export function xmlChildText(element: XmlElement, name: string): string | undefined {
  return xmlChild(element, name)?.text;
}

/**
 * `text` made safe as XML character data (request bodies: the parts list of
 * CompleteMultipartUpload).
 *
 * @example
 * ```ts
 * import { escapeXml } from "./xml.ts";
 * console.assert(escapeXml('"a"<&>') === "&quot;a&quot;&lt;&amp;&gt;");
 * ```
 */
export function escapeXml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (char) => `&${Object.entries(NAMED_ENTITIES).find(([, value]) => value === char)![0]};`,
  );
}

/** The index just past the next `terminator` from `from`; throws when there is none. */
function endOf(text: string, terminator: string, from: number): number {
  const end = text.indexOf(terminator, from);
  if (end === -1) throw new SyntaxError(`XML: "${terminator}" missing`);
  return end + terminator.length;
}

/** A name without its namespace prefix. */
function localName(name: string): string {
  return name.slice(name.indexOf(":") + 1);
}

/** `chunk` with its references decoded; a `&` that starts none is an error. */
function decodeReferences(chunk: string): string {
  const decoded = chunk.replace(REFERENCE, (_, hex, decimal, named) => {
    if (named) return NAMED_ENTITIES[named]!;
    const code = parseInt(hex ?? decimal, hex ? 16 : 10);
    if (code > 0x10ffff) throw new SyntaxError("XML: character reference out of range");
    return String.fromCodePoint(code);
  });
  if (chunk.replace(REFERENCE, "").includes("&")) {
    throw new SyntaxError("XML: '&' that starts no reference");
  }
  return decoded;
}
