//! A text form of the IR, so tests and snapshots describe models as data rather than API calls.
//!
//! [`print_model`] writes a [`Model`] as text and [`parse_model`] reads it back. The text is
//! deterministic (ops in [`Graph::topo_order`], initializers in [`Graph::initializer_ids`],
//! attributes in stored order), line-oriented so snapshot diffs are small, and round-trips:
//! `print(parse(s)) == s` for canonical text (what the printer writes), and `parse(print(m))`
//! reproduces `m` for models in the supported subset below.
//!
//! # Example
//!
//! ```
//! let text = r#"
//! model ir_version=8
//! opset 17
//! graph main(%input: float[N,3,8,8]) -> (%out: float[N,4,8,8]) {
//!   init %w: float[4,3,3,3] = seeded(1)        # a fixture declares big weights compactly
//!   init %b: float[4] = [0.1, -0.2, 0, 1]
//!   %y = Conv(%input, %w, %b) {kernel_shape=[3, 3], pads=[1, 1, 1, 1]} name="conv0"
//!   %out = Relu(%y)
//! }
//! "#;
//! let model = ssc_ir::parse_model(text).unwrap();
//! assert_eq!(model.graph.op_count(), 2);
//! assert_eq!(
//!     ssc_ir::print_model(&model),
//!     r#"model ir_version=8
//! opset 17
//! graph main(%input: float[N,3,8,8]) -> (%out: float[N,4,8,8]) {
//!   init %w: float[4,3,3,3] = <nnz=108 sum=6.112798e0 fnv=0xe32fb5a926a5bf48>
//!   init %b: float[4] = [0.1, -0.2, 0.0, 1.0]
//!   %y = Conv(%input, %w, %b) {kernel_shape=[3, 3], pads=[1, 1, 1, 1]} name="conv0"
//!   %out = Relu(%y) : float[N,4,8,8]
//! }
//! "#
//! );
//! ```
//!
//! # Grammar
//!
//! Statements end at the end of a line; inside `(...)`, `[...]` and an op's `{...}` newlines are
//! ordinary spaces, so long lists may wrap. `#` starts a comment that runs to the end of the line.
//!
//! ```text
//! text     = [header] {opset} graph
//! header   = "model" {key "=" (INT | STRING)}            keys: ir_version producer_name
//!                                                        producer_version domain model_version
//! opset    = "opset" [DOMAIN] INT                        no DOMAIN: the default domain ""
//! graph    = "graph" [NAME] "(" [param {"," param}] ")" "->" "(" [param {"," param}] ")" "{"
//!            {stmt} "}"
//! param    = VALUE [":" type]
//! stmt     = "init" VALUE [":" type] "=" [ttype] payload
//!          | outs "=" OPREF "(" [arg {"," arg}] ")" ["{" attr {"," attr} "}"]
//!            [":" type {"," type}] ["name=" STRING] ["overload=" STRING]
//!            ["captures=" "[" VALUE {"," VALUE} "]"] [notes]
//! notes    = "@{" [NAME "=" STRING {"," NAME "=" STRING}] "}"  IR-only annotations, sorted
//! outs     = "()" | arg {"," arg}
//! arg      = VALUE | "_"                                 "_" is an empty optional slot
//! type     = "?" | DTYPE "[" ("*" | [dim {"," dim}]) "]"  "?" is no type, "[*]" unknown rank
//! dim      = INT | "?" | SYMBOL
//! attr     = NAME "=" (INT | FLOAT | STRING | tensor | list | graph
//!            | "graphs" "[" [graph {"," graph}] "]" | "<" KIND ">")
//! list     = ["ints" | "floats" | "strings" | "tensors"] "[" [item {"," item}] "]"
//! tensor   = ttype payload
//! ttype    = DTYPE "[" [INT {"," INT}] "]"
//! payload  = "[" [elem {"," elem}] "]" | "zeros" | "ones" | "fill(" elem ")"
//!          | "range(" NUM "," NUM ")" | "seeded(" INT ["," NUM "," NUM] ")" | "hex(" HEX ")"
//!          | "<" digest ">"
//! ```
//!
//! - **Names.** A `VALUE` is `%name`; a `NAME` or `SYMBOL` is bare. Names made only of
//!   `[A-Za-z0-9_.]` (symbols: an identifier) are written bare, anything else quoted:
//!   `%"gpu_0/data:0"`. Strings escape `\\ \" \n \r \t` and other bytes as `\xNN`.
//! - **Ops.** `OPREF` is the op type, prefixed by its domain when that is not the default:
//!   `Conv`, `com.example.MyOp`, `ai.onnx.Relu` (the explicit `ai.onnx` domain is kept apart from
//!   `""`). The last dot-separated part is the op type; either part may be quoted. An op with no
//!   outputs is written `() = Op(...)`.
//! - **Types.** `float[1,3,?,N]` has known, unknown and symbolic dims; `float[*]` has unknown rank;
//!   `float[]` is a scalar; element types are [`DataType::name`](crate::DataType::name)s. An op line ends its call with
//!   `: T, ...`, one type per named (non-`_`) output, whenever any output has a type; `?` marks
//!   an untyped one. `seq(float[5])` and `optional(seq(float[*]))` are sequence and optional
//!   types; other non-tensor types (maps, sparse) print as `<opaque>`.
//! - **Attributes.** Ints are `3`, floats always carry a `.`, an exponent or are `inf`/`NaN`
//!   (Rust's shortest round-trip form, so they parse back bit-exactly; a NaN other than the
//!   canonical quiet NaN prints as its bits, `nan(0xffc00000)`). Empty lists name their kind
//!   (`ints[]`); a list mixing ints and floats is floats. Opaque attributes print as
//!   `<sparse_tensor>`, `<type_proto>`, ... and do not parse.
//! - **Subgraphs.** A graph attribute is a nested `graph` block: its statements one line each,
//!   indented one level deeper, its `}` at the op's indentation, and the op line continuing
//!   after it (`}} : float[2] captures=[%x]`). A subgraph may read any value already defined in
//!   the graphs around it; such a name becomes a value of the subgraph that nothing in it
//!   defines ([`Graph::free_values`]), and the op holding the subgraph captures the enclosing
//!   value (parsing adds the captures a subgraph implies to those written).
//! - **Annotations.** `@{epilogue="bias relu", sparse="0.1000"}` closes an op line with its
//!   [`OpDesc::annotations`](crate::OpDesc::annotations), keys in sorted order (any order parses;
//!   a repeated key is an error). They exist only in the IR: ONNX export drops them.
//! - **Initializers.** `init %w: float[4] = [...]` gives the value the tensor's type;
//!   `init %w = float[4] [...]` leaves the value untyped (as an imported initializer without
//!   `value_info`); an initializer of a graph input (a default value) takes the input's type.
//!
//! # Tensor payloads
//!
//! Elements are flat, row-major. The printer writes a tensor of at most
//! [`PrintOptions::max_inline_elements`] elements as an exact list; a larger one as `zeros`,
//! `ones`, `fill(v)` or `range(start, step)` when one of those regenerates it bit for bit, and
//! otherwise as a digest, which the parser rejects: values never reach snapshots.
//!
//! - Lists: floats in shortest round-trip form, integers in decimal, bools as `true`/`false`,
//!   strings quoted. Float types accept integer literals. Types without a numeric form
//!   (sub-byte ints, float8, complex, unknown codes) use `hex(...)`, the packed little-endian
//!   storage bytes.
//! - `zeros`, `ones`, `fill(v)`: every element equal.
//! - `range(start, step)`: element `i` is `start + step * i`, exactly for integer types (an
//!   element out of the type's range is an error) and computed in f64 then rounded for floats.
//! - `seeded(seed)`: a deterministic pseudo-random fill for fixtures. Element `i` draws the
//!   `i`-th output `r` of SplitMix64 seeded with `seed` (state += 0x9E3779B97F4A7C15, then the
//!   standard mix), takes `u = (r >> 40) / 2^24`, uniform in [0, 1) on a 2^-24 grid, and is
//!   `2u - 1`, in [-1, 1) and exact in f32 (rounded for f16/bf16). `seeded(seed, lo, hi)` gives
//!   `lo + (hi - lo) u` instead; integer types require that form and take
//!   `lo + ((r * (hi - lo)) >> 64)`, uniform in `[lo, hi)`. Bools take the top bit of `r`.
//! - Digest `<nnz=N sum=S fnv=0xH>`: `nnz` counts elements not equal to zero, `sum` is their f64
//!   sum in row-major order printed as `{:.6e}`, and `fnv` is FNV-1a 64 of the packed storage
//!   bytes (of each string's u64-LE length then bytes, for string tensors). Types without
//!   numeric values print only `fnv`; tensors held as opaque messages print `<opaque>`.
//!
//! # Supported subset
//!
//! Printing never fails. Parsing reproduces ops (in order, with names, domains, overloads,
//! attributes, annotations and wiring, including empty optional slots and captures), value names and types,
//! graph inputs and outputs, initializers, subgraphs and the model header fields above. Not
//! carried: doc strings, metadata properties, graph and model extras (functions, training info,
//! sparse initializers, quantization annotations), opaque attributes, types and tensors, and
//! tensors printed as digests. A value is marked for `value_info` export when it has a type and is not a
//! graph input or output. A graph whose ops form a cycle prints in insertion order under a
//! warning comment.

mod build;
mod parse;
mod print;
mod values;

#[cfg(test)]
mod tests;

use crate::{Graph, Model};

/// The `ir_version` of a text without a `model` header line.
pub const DEFAULT_IR_VERSION: i64 = 8;
/// The default-domain opset of a text without `model` or `opset` lines.
pub const DEFAULT_OPSET: i64 = 17;
/// The largest tensor, in storage bytes, that a text payload may create. Text fixtures are small;
/// the limit keeps a typo in a shape from allocating gigabytes.
pub const MAX_TENSOR_BYTES: usize = 256 << 20;

/// Why a text did not parse, at a 1-based line and column (in characters).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{col}: {msg}")]
pub struct ParseError {
    pub line: usize,
    pub col: usize,
    pub msg: String,
}

/// How the printer writes tensor payloads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrintOptions {
    /// Tensors with at most this many elements print their values; larger ones print a generator
    /// or a digest. `usize::MAX` prints every value, so every numeric tensor parses back.
    pub max_inline_elements: usize,
}

impl Default for PrintOptions {
    fn default() -> Self {
        PrintOptions {
            max_inline_elements: 64,
        }
    }
}

/// Prints a model: its header, opset imports and main graph.
pub fn print_model(model: &Model) -> String {
    print_model_with(model, &PrintOptions::default())
}

/// [`print_model`] with explicit options.
pub fn print_model_with(model: &Model, opts: &PrintOptions) -> String {
    print::Printer::new(opts).model(model)
}

/// Prints a graph alone (the `graph ... { ... }` block).
pub fn print_graph(graph: &Graph) -> String {
    print_graph_with(graph, &PrintOptions::default())
}

/// [`print_graph`] with explicit options.
pub fn print_graph_with(graph: &Graph, opts: &PrintOptions) -> String {
    print::Printer::new(opts).graph(graph)
}

/// Parses a model. Without a `model` line, the model gets [`DEFAULT_IR_VERSION`] and (without
/// `opset` lines) the default-domain opset [`DEFAULT_OPSET`].
pub fn parse_model(text: &str) -> Result<Model, ParseError> {
    let ast = parse::Parser::new(text).model()?;
    build::model(text, ast)
}

/// Parses a text and returns its graph; a header, if present, is read and dropped.
pub fn parse_graph(text: &str) -> Result<Graph, ParseError> {
    parse_model(text).map(|m| m.graph)
}

/// 1-based line and character column of byte offset `at` in `src`.
fn line_col(src: &str, at: usize) -> (usize, usize) {
    let at = at.min(src.len());
    // Offsets always fall on char boundaries (the parser only stops there), but stay safe.
    let before = src.get(..at).unwrap_or(src);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

fn error_at(src: &str, at: usize, msg: impl Into<String>) -> ParseError {
    let (line, col) = line_col(src, at);
    ParseError {
        line,
        col,
        msg: msg.into(),
    }
}

/// Characters allowed in a bare value, graph or attribute name, and in a bare domain.
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.'
}

/// True when `s` can be written without quotes as a value or graph name.
fn is_bare_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(is_name_char)
}

/// True when `s` is an identifier: a bare symbol, op type or attribute name.
fn is_ident(s: &str) -> bool {
    let mut cs = s.chars();
    matches!(cs.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && cs.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Appends `bytes` as a quoted string: valid UTF-8 stays readable, everything else is escaped.
fn quote_bytes(bytes: &[u8], out: &mut String) {
    out.push('"');
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if c.is_control() => {
                    let mut buf = [0u8; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        out.push_str(&format!("\\x{b:02x}"));
                    }
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out.push('"');
}

/// Appends a name bare when `bare` allows it, quoted otherwise.
fn name_into(s: &str, bare: bool, out: &mut String) {
    if bare {
        out.push_str(s);
    } else {
        quote_bytes(s.as_bytes(), out);
    }
}
