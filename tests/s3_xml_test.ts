/**
 * server/s3/xml.ts: the answers S3 servers send (entities, CDATA, namespaces,
 * attributes, empty elements) read right, and what is not well-formed, or
 * asks for entity expansion, refused rather than half read.
 */

import assert from "node:assert/strict";
import { escapeXml, parseXml, xmlChildren, xmlChildText } from "../server/s3/xml.ts";

Deno.test("parseXml() reads a ListObjectsV2 answer: names, text, entities, empty elements", () => {
  const root = parseXml(
    `<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">` +
      `<Name>b</Name><Prefix/><KeyCount>2</KeyCount>` +
      `<Contents><Key>a &amp; b &lt;c&gt; &quot;d&quot; &apos;e&apos;</Key><ETag>&quot;9b2cf&quot;</ETag></Contents>` +
      `<!-- a comment --><Contents><Key>&#x65E5;&#26412; &#x1F600;</Key></Contents>` +
      `<s3:Extra s3:attr='1 > 0'><![CDATA[raw <not a tag> & more]]></s3:Extra>` +
      `</ListBucketResult>`,
  );
  assert.equal(root.name, "ListBucketResult");
  assert.equal(xmlChildText(root, "Name"), "b");
  assert.equal(xmlChildText(root, "Prefix"), "");
  assert.equal(xmlChildText(root, "Missing"), undefined);
  const contents = xmlChildren(root, "Contents");
  assert.deepEqual(contents.map((entry) => xmlChildText(entry, "Key")), [
    `a & b <c> "d" 'e'`,
    "日本 😀",
  ]);
  assert.equal(xmlChildText(contents[0]!, "ETag"), '"9b2cf"');
  assert.equal(xmlChildText(root, "Extra"), "raw <not a tag> & more");
});

Deno.test("parseXml() refuses what is not well-formed, and any DOCTYPE", () => {
  const bad = [
    "",
    "just text",
    "<A>",
    "<A></B>",
    "<A><B></A></B>",
    "<A/><B/>",
    "<A>&bogus;</A>",
    "<A>a & b</A>",
    "<A>&#x110000;</A>",
    "<A><!-- unterminated </A>",
    '<!DOCTYPE A [<!ENTITY e "x">]><A>&e;</A>',
    "<A>< B/></A>",
  ];
  for (const text of bad) {
    assert.throws(() => parseXml(text), SyntaxError, JSON.stringify(text));
  }
});

Deno.test("escapeXml() output parses back to the same text", () => {
  const text = `"quoted" <tag> & 'apos' &amp; ]]>`;
  assert.equal(xmlChildText(parseXml(`<A><B>${escapeXml(text)}</B></A>`), "B"), text);
});
