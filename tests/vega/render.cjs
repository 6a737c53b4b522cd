// Render a Vega-Lite spec as OpenSearch Dashboards 2.19 does (vega 5.23.0 with
// vega-interpreter's CSP-safe expression interpreter, vega-lite 5), headless, and report what
// was drawn: the SVG's size and the datum of every bar. Input on stdin: {"spec": <vega-lite>},
// with the OpenSearch response already inlined as data.values. Output on stdout: JSON.
const vl = require("vega-lite");
const vega = require("vega");
const { expressionInterpreter } = require("vega-interpreter");

function bars(node, out) {
  if (!node) return out;
  if (node.marktype === "rect" && Array.isArray(node.items)) {
    for (const item of node.items) if (item.datum) out.push(item.datum);
  }
  for (const item of node.items || []) bars(item, out);
  return out;
}

async function main() {
  let text = "";
  for await (const chunk of process.stdin) text += chunk;
  const { spec } = JSON.parse(text);
  const compiled = vl.compile(spec).spec;
  const runtime = vega.parse(compiled, null, { ast: true });
  const view = new vega.View(runtime, { renderer: "none", expr: expressionInterpreter });
  await view.runAsync();
  const svg = await view.toSVG();
  const drawn = bars(view.scenegraph().root, []).map((d) => {
    const { value, bucket, annotations, steps, ...rest } = d;   // the raw buckets stay out
    return rest;
  });
  process.stdout.write(JSON.stringify({ svg_bytes: svg.length, bars: drawn,
                                        versions: { vega: vega.version, vega_lite: vl.version } }));
}

main().catch((error) => {
  process.stderr.write(String(error && error.stack || error));
  process.exit(1);
});
