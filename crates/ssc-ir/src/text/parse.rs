//! The text parser: a hand-written recursive-descent reader from text to a syntax tree that
//! keeps byte offsets, so the builder can report line and column for semantic errors too.

use bytes::Bytes;

use super::values::{elem_width, encode_lit, generate, Gen, Lit, LitKind};
use super::{error_at, is_name_char, ParseError, MAX_TENSOR_BYTES};
use crate::{
    checked_numel, AttrValue, Attribute, DataType, Dim, OpDesc, OpsetImport, Tensor, TensorData,
    TensorType, ValueType,
};

type Result<T> = std::result::Result<T, ParseError>;

/// A name and the byte offset where it was written.
pub(super) type Spanned = (String, usize);

/// The parsed `model` line and `opset` lines.
#[derive(Debug, Default)]
pub(super) struct Header {
    pub ir_version: Option<i64>,
    pub producer_name: Option<String>,
    pub producer_version: Option<String>,
    pub domain: Option<String>,
    pub model_version: Option<i64>,
}

#[derive(Debug)]
pub(super) struct ModelAst {
    /// `None` when the text has no `model` line.
    pub header: Option<Header>,
    pub opsets: Vec<OpsetImport>,
    pub graph: GraphAst,
}

#[derive(Debug)]
pub(super) struct Param {
    pub name: Spanned,
    pub ty: Option<ValueType>,
}

#[derive(Debug)]
pub(super) struct InitAst {
    pub name: Spanned,
    /// The `: type` annotation, if written (`Some(None)` for `: ?`).
    pub annotation: Option<Option<ValueType>>,
    pub tensor: Tensor,
}

#[derive(Debug)]
pub(super) struct OpAst {
    pub desc: OpDesc,
    pub inputs: Vec<Option<Spanned>>,
    pub outputs: Vec<Option<Spanned>>,
    /// The `: T, ...` list and where it starts.
    pub types: Option<(Vec<Option<ValueType>>, usize)>,
    pub captures: Vec<Spanned>,
    /// Subgraph attributes, built with the enclosing scope in view: the index in
    /// `desc.attrs` (which holds a placeholder), the graphs, and whether the attribute is a
    /// `graphs[...]` list.
    pub subgraphs: Vec<(usize, Vec<GraphAst>, bool)>,
}

/// A parsed attribute: a plain value, or subgraphs the builder turns into graphs.
enum AttrAst {
    Plain(Attribute),
    Graphs(String, Vec<GraphAst>, bool),
}

#[derive(Debug)]
pub(super) struct GraphAst {
    pub name: String,
    pub inputs: Vec<Param>,
    pub outputs: Vec<Param>,
    pub inits: Vec<InitAst>,
    pub ops: Vec<OpAst>,
}

pub(super) struct Parser<'s> {
    src: &'s str,
    pos: usize,
    /// Open brackets (char and offset); inside any, newlines are plain whitespace.
    opens: Vec<(char, usize)>,
}

fn closer(open: char) -> char {
    match open {
        '(' => ')',
        '[' => ']',
        _ => '}',
    }
}

impl<'s> Parser<'s> {
    pub fn new(src: &'s str) -> Parser<'s> {
        Parser {
            src,
            pos: 0,
            opens: Vec::new(),
        }
    }

    // ----- lexical helpers -----

    fn err<T>(&self, at: usize, msg: impl Into<String>) -> Result<T> {
        Err(error_at(self.src, at, msg))
    }

    fn rest(&self) -> &'s str {
        &self.src[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn peek2(&self) -> Option<char> {
        self.rest().chars().nth(1)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    /// Skips spaces and comments, and newlines too while inside brackets.
    fn ws(&mut self) {
        while let Some(c) = self.peek() {
            match c {
                ' ' | '\t' | '\r' => {
                    self.pos += 1;
                }
                '\n' if !self.opens.is_empty() => {
                    self.pos += 1;
                }
                '#' => {
                    let n = self.rest().find('\n').unwrap_or(self.rest().len());
                    self.pos += n;
                }
                _ => break,
            }
        }
    }

    /// Skips blank lines and comments between statements.
    fn blank_lines(&mut self) {
        loop {
            self.ws();
            if self.peek() == Some('\n') {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    /// What the next token looks like, for error messages.
    fn found(&self) -> String {
        match self.peek() {
            None => "end of input".into(),
            Some('\n') => "end of line".into(),
            Some(c) if is_name_char(c) => {
                let word: String = self
                    .rest()
                    .chars()
                    .take_while(|&c| is_name_char(c))
                    .take(24)
                    .collect();
                format!("`{word}`")
            }
            Some(c) => format!("`{c}`"),
        }
    }

    fn expected<T>(&self, what: &str) -> Result<T> {
        self.err(self.pos, format!("expected {what}, found {}", self.found()))
    }

    fn eat(&mut self, c: char) -> bool {
        self.ws();
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: char) -> Result<()> {
        if self.eat(c) {
            Ok(())
        } else {
            self.expected(&format!("`{c}`"))
        }
    }

    fn open(&mut self, c: char) -> Result<()> {
        self.ws();
        let at = self.pos;
        self.expect(c)?;
        self.opens.push((c, at));
        Ok(())
    }

    fn close_desc(&self) -> String {
        let (c, at) = *self.opens.last().expect("inside brackets");
        let (line, col) = super::line_col(self.src, at);
        format!("`{}` to close `{c}` at {line}:{col}", closer(c))
    }

    /// Parses `item (, item)* ,? close` after an opening bracket, popping it.
    fn seq<T>(&mut self, mut item: impl FnMut(&mut Self) -> Result<T>) -> Result<Vec<T>> {
        let close = closer(self.opens.last().expect("inside brackets").0);
        let mut out = Vec::new();
        loop {
            if self.eat(close) {
                break;
            }
            out.push(item(self)?);
            if self.eat(',') {
                continue;
            }
            if self.eat(close) {
                break;
            }
            return self.expected(&format!("`,` or {}", self.close_desc()));
        }
        self.opens.pop();
        Ok(out)
    }

    /// Consumes the keyword `kw` if it is the next whole word.
    fn eat_word(&mut self, kw: &str) -> bool {
        self.ws();
        let rest = self.rest();
        if rest.starts_with(kw) && !rest[kw.len()..].starts_with(|c: char| is_name_char(c)) {
            self.pos += kw.len();
            true
        } else {
            false
        }
    }

    /// A bare run of name characters (`dots` allows `.`), possibly empty.
    fn bare(&mut self, dots: bool) -> &'s str {
        self.ws();
        let rest = self.rest();
        let n = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || (dots && c == '.')))
            .unwrap_or(rest.len());
        self.pos += n;
        &rest[..n]
    }

    /// A quoted string's bytes; the opening quote is next.
    fn string(&mut self) -> Result<Vec<u8>> {
        self.ws();
        let start = self.pos;
        if self.bump() != Some('"') {
            self.pos = start;
            return self.expected("a string");
        }
        let mut out = Vec::new();
        loop {
            let at = self.pos;
            match self.bump() {
                None | Some('\n') => return self.err(start, "unterminated string"),
                Some('"') => return Ok(out),
                Some('\\') => match self.bump() {
                    Some('n') => out.push(b'\n'),
                    Some('r') => out.push(b'\r'),
                    Some('t') => out.push(b'\t'),
                    Some('\\') => out.push(b'\\'),
                    Some('"') => out.push(b'"'),
                    Some('x') => {
                        let hex = self
                            .rest()
                            .get(..2)
                            .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()));
                        let Some(hex) = hex else {
                            return self.err(at, "`\\x` needs two hex digits");
                        };
                        out.push(u8::from_str_radix(hex, 16).expect("checked hex"));
                        self.pos += 2;
                    }
                    _ => return self.err(at, "unknown escape; use \\n \\r \\t \\\\ \\\" or \\xNN"),
                },
                Some(c) => {
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
    }

    fn utf8_string(&mut self) -> Result<String> {
        self.ws();
        let at = self.pos;
        String::from_utf8(self.string()?).or_else(|_| self.err(at, "string is not valid UTF-8"))
    }

    /// A name written bare (`[A-Za-z0-9_.]+`) or quoted.
    fn name(&mut self, what: &str) -> Result<Spanned> {
        self.ws();
        let at = self.pos;
        if self.peek() == Some('"') {
            return Ok((self.utf8_string()?, at));
        }
        match self.bare(true) {
            "" => self.expected(what),
            s => Ok((s.to_string(), at)),
        }
    }

    /// `%name`.
    fn value_ref(&mut self) -> Result<Spanned> {
        self.ws();
        let at = self.pos;
        if !self.eat('%') {
            return self.expected("a value like `%x`");
        }
        if matches!(self.peek(), Some(c) if c == '"' || is_name_char(c)) {
            let (name, _) = self.name("a value name")?;
            Ok((name, at))
        } else {
            self.expected("a value name after `%`")
        }
    }

    /// A value or the empty slot `_`.
    fn slot(&mut self) -> Result<Option<Spanned>> {
        self.ws();
        if self.peek() == Some('_') && !self.peek2().is_some_and(is_name_char) {
            self.pos += 1;
            return Ok(None);
        }
        if self.peek() != Some('%') {
            return self.expected("a value like `%x` or `_`");
        }
        self.value_ref().map(Some)
    }

    fn end_line(&mut self) -> Result<()> {
        self.ws();
        match self.peek() {
            None => Ok(()),
            Some('\n') => {
                self.pos += 1;
                Ok(())
            }
            _ => self.expected("end of line"),
        }
    }

    /// True when a number literal starts here.
    fn at_number(&self) -> bool {
        let rest = self.rest();
        let unsigned = rest.strip_prefix(['-', '+']).unwrap_or(rest);
        unsigned.starts_with(|c: char| c.is_ascii_digit())
            || unsigned.starts_with("inf")
            || unsigned.starts_with("NaN")
            || unsigned.starts_with("nan(")
    }

    /// A number literal (`3`, `-1.5e-3`, `inf`, `NaN`, `nan(0x7fc00001)`); the caller checked
    /// [`Parser::at_number`].
    fn number(&mut self) -> Result<Lit> {
        self.ws();
        let start = self.pos;
        if matches!(self.peek(), Some('-' | '+')) {
            self.pos += 1;
        }
        let signed = self.pos != start;
        let word = |p: &Self, kw: &str| {
            let rest = p.rest();
            rest.starts_with(kw) && !rest[kw.len()..].starts_with(is_name_char)
        };
        let kind = if word(self, "inf") {
            self.pos += 3;
            LitKind::Float
        } else if word(self, "NaN") || self.rest().starts_with("nan(") {
            if signed {
                // A sign on NaN has no canonical meaning; ask for the bits.
                return self.err(start, "a signed NaN is written as its bits: nan(0x...)");
            }
            if self.rest().starts_with("nan(") {
                self.pos += 4;
                let hex_at = self.pos;
                let body = self.bare(false);
                let bits = body
                    .strip_prefix("0x")
                    .filter(|h| !h.is_empty() && h.len() <= 16)
                    .and_then(|h| u64::from_str_radix(h, 16).ok());
                let Some(bits) = bits else {
                    return self.err(hex_at, "expected NaN bits like `0x7fc00001`");
                };
                if !self.eat(')') {
                    return self.expected("`)`");
                }
                LitKind::Nan(Some(bits))
            } else {
                self.pos += 3;
                LitKind::Nan(None)
            }
        } else {
            let digits = |p: &mut Self| {
                let n = p
                    .rest()
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(p.rest().len());
                p.pos += n;
                n
            };
            if digits(self) == 0 {
                return self.err(start, "expected a number");
            }
            let mut float = false;
            if self.peek() == Some('.') {
                self.pos += 1;
                digits(self);
                float = true;
            }
            if matches!(self.peek(), Some('e' | 'E')) {
                let save = self.pos;
                self.pos += 1;
                if matches!(self.peek(), Some('-' | '+')) {
                    self.pos += 1;
                }
                if digits(self) == 0 {
                    self.pos = save;
                } else {
                    float = true;
                }
            }
            let text = &self.src[start..self.pos];
            if float {
                LitKind::Float
            } else {
                match text.parse::<i128>() {
                    Ok(v) => LitKind::Int(v),
                    Err(_) => return self.err(start, format!("integer `{text}` is out of range")),
                }
            }
        };
        if self.peek().is_some_and(|c| is_name_char(c) || c == '(') {
            let end = self
                .rest()
                .find(|c: char| !is_name_char(c))
                .unwrap_or(self.rest().len());
            let bad = &self.src[start..self.pos + end];
            return self.err(start, format!("malformed number `{bad}`"));
        }
        Ok(Lit {
            text: self.src[start..self.pos].to_string(),
            kind,
        })
    }

    fn int<T: TryFrom<i128>>(&mut self, what: &str) -> Result<T> {
        self.ws();
        let at = self.pos;
        if !self.at_number() {
            return self.expected(what);
        }
        match self.number()?.kind {
            LitKind::Int(v) => {
                T::try_from(v).or_else(|_| self.err(at, format!("{v} is out of range for {what}")))
            }
            _ => self.err(at, format!("expected {what}, found a float")),
        }
    }

    /// A tensor element: a number, `true`/`false`, or (for string tensors) a string.
    fn elem(&mut self) -> Result<Elem> {
        self.ws();
        let at = self.pos;
        if self.peek() == Some('"') {
            return Ok(Elem::Str(self.string()?, at));
        }
        if self.at_number() {
            return Ok(Elem::Num(self.number()?, at));
        }
        for (word, b) in [("true", true), ("false", false)] {
            if self.eat_word(word) {
                let lit = Lit {
                    text: word.into(),
                    kind: LitKind::Bool(b),
                };
                return Ok(Elem::Num(lit, at));
            }
        }
        self.expected("a number")
    }

    // ----- types -----

    fn dtype(&mut self) -> Result<(DataType, usize)> {
        self.ws();
        let at = self.pos;
        let name = self.bare(false);
        if name.is_empty() {
            return self.expected("an element type like `float`");
        }
        match DataType::from_name(name) {
            Some(d) => Ok((d, at)),
            None => self.err(at, format!("unknown element type `{name}`")),
        }
    }

    /// True when a dtype name followed by `[` is next (a tensor type, not a payload keyword).
    fn at_ttype(&self) -> bool {
        let rest = self.rest().trim_start_matches([' ', '\t']);
        let n = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        n > 0 && rest[n..].starts_with('[') && DataType::from_name(&rest[..n]).is_some()
    }

    /// `?`, `<opaque>` (rejected), `seq(T)`, `optional(T)` or `dtype[dims]`.
    fn value_type(&mut self) -> Result<Option<ValueType>> {
        self.ws();
        if self.eat('?') {
            return Ok(None);
        }
        if self.peek() == Some('<') {
            return self.err(
                self.pos,
                "opaque types (map, sparse, annotated) have no text form",
            );
        }
        for (kw, seq) in [("seq(", true), ("optional(", false)] {
            if self.rest().starts_with(kw) {
                self.pos += kw.len() - 1;
                self.open('(')?;
                let at = self.pos;
                let Some(elem) = self.value_type()? else {
                    return self.err(at, format!("`{kw}...)` needs an element type, not `?`"));
                };
                self.ws();
                if !self.eat(')') {
                    return self.expected(&self.close_desc());
                }
                self.opens.pop();
                let e = Box::new(elem);
                return Ok(Some(if seq {
                    ValueType::Sequence(e)
                } else {
                    ValueType::Optional(e)
                }));
            }
        }
        let (elem, _) = self.dtype()?;
        self.open('[')?;
        let shape = if self.eat('*') {
            if !self.eat(']') {
                return self.expected(&self.close_desc());
            }
            self.opens.pop();
            None
        } else {
            Some(self.seq(|p| {
                p.ws();
                let at = p.pos;
                match p.peek() {
                    Some('?') => {
                        p.pos += 1;
                        Ok(Dim::Unknown)
                    }
                    Some('"') => Ok(Dim::Param(p.utf8_string()?)),
                    Some(c) if c.is_ascii_digit() => Ok(Dim::Known(p.int("a dimension")?)),
                    Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                        Ok(Dim::Param(p.bare(false).to_string()))
                    }
                    _ => p.err(
                        at,
                        format!(
                            "expected a dimension (a number, `?` or a symbol), found {}",
                            p.found()
                        ),
                    ),
                }
            })?)
        };
        Ok(Some(ValueType::Tensor(TensorType { elem, shape })))
    }

    /// A static tensor type `dtype[2,3]`.
    fn ttype(&mut self) -> Result<(DataType, Vec<usize>, usize)> {
        let (dtype, at) = self.dtype()?;
        self.open('[')?;
        let dims = self.seq(|p| p.int("a dimension"))?;
        Ok((dtype, dims, at))
    }

    // ----- tensors -----

    /// `ttype payload`.
    fn tensor(&mut self) -> Result<Tensor> {
        let (dtype, dims, at) = self.ttype()?;
        self.payload(dtype, dims, at)
    }

    /// The values of a tensor of type `dtype[dims]` declared at `at`.
    fn payload(&mut self, dtype: DataType, dims: Vec<usize>, at: usize) -> Result<Tensor> {
        let ty = super::print::ttype_string(dtype, &dims);
        let Some(numel) = checked_numel(&dims) else {
            return self.err(at, format!("the element count of {ty} overflows"));
        };
        let bytes = match dtype.storage_bytes(numel) {
            Some(b) => b,
            None if dtype == DataType::String => numel,
            None => 0,
        };
        if bytes > MAX_TENSOR_BYTES || numel > MAX_TENSOR_BYTES {
            return self.err(
                at,
                format!(
                    "a {ty} tensor is too large for the text form (limit {MAX_TENSOR_BYTES} bytes)"
                ),
            );
        }
        self.ws();
        let pat = self.pos;
        let raw = |p: &Self, data: Vec<u8>| -> Result<Tensor> {
            Tensor::from_raw(dtype, dims.clone(), Bytes::from(data))
                .or_else(|e| p.err(pat, e.to_string()))
        };
        if self.peek() == Some('<') {
            return if self.rest().starts_with("<opaque>") {
                self.err(pat, "an opaque tensor has no text form")
            } else {
                self.err(pat, "a digest stands for values the text does not hold; write the values or a generator (zeros, ones, fill, range, seeded)")
            };
        }
        if self.peek() == Some('[') {
            self.open('[')?;
            let elems = self.seq(|p| p.elem())?;
            if elems.len() != numel {
                return self.err(
                    pat,
                    format!("{ty} needs {numel} values, found {}", elems.len()),
                );
            }
            if dtype == DataType::String {
                let strings = elems
                    .into_iter()
                    .map(|e| match e {
                        Elem::Str(s, _) => Ok(Bytes::from(s)),
                        Elem::Num(l, at) => {
                            self.err(at, format!("expected a string, found `{}`", l.text))
                        }
                    })
                    .collect::<Result<Vec<_>>>()?;
                return Ok(Tensor {
                    dtype,
                    dims,
                    data: TensorData::Strings(strings),
                    doc_string: None,
                    metadata: Vec::new(),
                });
            }
            if elem_width(dtype).is_none() {
                return self.err(pat, format!("{dtype} elements have no numeric form; write the storage bytes as hex(...)"));
            }
            let mut data = Vec::with_capacity(bytes);
            for e in &elems {
                match e {
                    Elem::Num(lit, at) => {
                        encode_lit(dtype, lit, &mut data).or_else(|m| self.err(*at, m))?
                    }
                    Elem::Str(_, at) => {
                        return self.err(*at, format!("expected a {dtype} value, found a string"))
                    }
                }
            }
            return raw(self, data);
        }
        let word = self.bare(false);
        let gen = match word {
            "zeros" => Gen::Zeros,
            "ones" => Gen::Ones,
            "fill" => {
                self.open('(')?;
                let e = self.elem()?;
                self.close()?;
                match e {
                    Elem::Num(lit, _) => Gen::Fill(lit),
                    Elem::Str(_, at) => return self.err(at, "fill takes a number"),
                }
            }
            "range" => {
                self.open('(')?;
                let start = self.num_arg()?;
                self.expect(',')?;
                let step = self.num_arg()?;
                self.close()?;
                Gen::Range(start, step)
            }
            "seeded" => {
                self.open('(')?;
                let seed = self.int::<u64>("a seed")?;
                let range = if self.eat(',') {
                    let lo = self.num_arg()?;
                    self.expect(',')?;
                    Some((lo, self.num_arg()?))
                } else {
                    None
                };
                self.close()?;
                Gen::Seeded { seed, range }
            }
            "hex" => {
                self.open('(')?;
                self.ws();
                let hat = self.pos;
                let hex = self.bare(false);
                if !hex.len().is_multiple_of(2) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return self.err(hat, "hex(...) takes an even number of hex digits");
                }
                let data: Vec<u8> = (0..hex.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("checked hex"))
                    .collect();
                self.close()?;
                if dtype == DataType::String {
                    return self.err(pat, "a string tensor lists its strings");
                }
                return raw(self, data);
            }
            _ => {
                self.pos = pat;
                return self.expected("tensor values: `[...]`, zeros, ones, fill(v), range(start, step), seeded(seed) or hex(...)");
            }
        };
        if dtype == DataType::String {
            return self.err(pat, "generators need a numeric element type");
        }
        let data = generate(dtype, numel, &gen).or_else(|m| self.err(pat, m))?;
        raw(self, data)
    }

    fn num_arg(&mut self) -> Result<Lit> {
        self.ws();
        if !self.at_number() {
            return self.expected("a number");
        }
        self.number()
    }

    fn close(&mut self) -> Result<()> {
        let c = closer(self.opens.last().expect("inside brackets").0);
        if !self.eat(c) {
            return self.expected(&self.close_desc());
        }
        self.opens.pop();
        Ok(())
    }

    // ----- attributes -----

    /// A subgraph inside an op's attribute block: statements end at line ends again inside it.
    fn nested_graph(&mut self) -> Result<GraphAst> {
        let saved = std::mem::take(&mut self.opens);
        let g = self.graph_rest();
        self.opens = saved;
        g
    }

    fn attr(&mut self) -> Result<AttrAst> {
        let (name, _) = self.name("an attribute name")?;
        self.expect('=')?;
        self.ws();
        let at = self.pos;
        if self.eat_word("graph") {
            return Ok(AttrAst::Graphs(name, vec![self.nested_graph()?], false));
        }
        if self.rest().starts_with("graphs[") {
            self.pos += "graphs".len();
            self.open('[')?;
            let graphs = self.seq(|p| {
                if !p.eat_word("graph") {
                    return p.expected("`graph`");
                }
                p.nested_graph()
            })?;
            return Ok(AttrAst::Graphs(name, graphs, true));
        }
        let value = match self.peek() {
            Some('"') => AttrValue::String(Bytes::from(self.string()?)),
            Some('[') => self.attr_list(None)?,
            Some('<') => {
                let kind = self.rest()[1..].split('>').next().unwrap_or("");
                return self.err(at, format!("attribute `{name}` is opaque (`<{kind}>`): sparse tensors, type protos and attribute references have no text form"));
            }
            _ if self.at_number() => {
                let lit = self.number()?;
                match lit.kind {
                    LitKind::Int(v) => {
                        AttrValue::Int(i64::try_from(v).or_else(|_| {
                            self.err(at, format!("{v} does not fit an int attribute"))
                        })?)
                    }
                    _ => AttrValue::Float(lit.to_f32().or_else(|m| self.err(at, m))?),
                }
            }
            _ if self.at_ttype() => AttrValue::Tensor(self.tensor()?),
            _ => {
                let word = self.bare(false);
                match word {
                    "ints" | "floats" | "strings" | "tensors" if self.peek() == Some('[') => {
                        self.attr_list(Some(word))?
                    }
                    _ => {
                        self.pos = at;
                        return self.expected("an attribute value");
                    }
                }
            }
        };
        Ok(AttrAst::Plain(Attribute::new(name, value)))
    }

    /// `[...]` after an optional kind prefix (already consumed).
    fn attr_list(&mut self, kind: Option<&str>) -> Result<AttrValue> {
        self.ws();
        let at = self.pos;
        self.open('[')?;
        let items = self.seq(|p| {
            p.ws();
            let at = p.pos;
            if p.at_ttype() {
                Ok(Item::Tensor(p.tensor()?))
            } else if p.peek() == Some('"') {
                Ok(Item::Str(Bytes::from(p.string()?)))
            } else if p.at_number() {
                Ok(Item::Num(p.number()?, at))
            } else {
                p.expected("a list item (number, string or tensor)")
            }
        })?;
        let kind =
            match kind {
                Some(k) => k,
                None => match items.first() {
                    None => return self.err(
                        at,
                        "an empty list needs its kind: ints[], floats[], strings[] or tensors[]",
                    ),
                    Some(Item::Str(_)) => "strings",
                    Some(Item::Tensor(_)) => "tensors",
                    Some(Item::Num(..)) => {
                        let float = items.iter().any(
                            |i| matches!(i, Item::Num(l, _) if !matches!(l.kind, LitKind::Int(_))),
                        );
                        if float {
                            "floats"
                        } else {
                            "ints"
                        }
                    }
                },
            };
        let mismatch = |p: &Self| {
            error_at(
                p.src,
                at,
                format!("this is a list of {kind}, so every item must be one"),
            )
        };
        Ok(match kind {
            "ints" => AttrValue::Ints(
                items
                    .into_iter()
                    .map(|i| match i {
                        Item::Num(
                            Lit {
                                kind: LitKind::Int(v),
                                ..
                            },
                            at,
                        ) => i64::try_from(v).or_else(|_| {
                            self.err(at, format!("{v} does not fit an int attribute"))
                        }),
                        _ => Err(mismatch(self)),
                    })
                    .collect::<Result<_>>()?,
            ),
            "floats" => AttrValue::Floats(
                items
                    .into_iter()
                    .map(|i| match i {
                        Item::Num(l, at) => l.to_f32().or_else(|m| self.err(at, m)),
                        _ => Err(mismatch(self)),
                    })
                    .collect::<Result<_>>()?,
            ),
            "strings" => AttrValue::Strings(
                items
                    .into_iter()
                    .map(|i| match i {
                        Item::Str(s) => Ok(s),
                        _ => Err(mismatch(self)),
                    })
                    .collect::<Result<_>>()?,
            ),
            _ => AttrValue::Tensors(
                items
                    .into_iter()
                    .map(|i| match i {
                        Item::Tensor(t) => Ok(t),
                        _ => Err(mismatch(self)),
                    })
                    .collect::<Result<_>>()?,
            ),
        })
    }

    // ----- statements -----

    pub fn model(mut self) -> Result<ModelAst> {
        self.blank_lines();
        let mut header = None;
        if self.eat_word("model") {
            let mut h = Header::default();
            loop {
                self.ws();
                if matches!(self.peek(), None | Some('\n')) {
                    break;
                }
                let at = self.pos;
                let key = self.bare(false);
                if key.is_empty() {
                    return self.expected("a model field like `ir_version=8`");
                }
                self.expect('=')?;
                let dup = match key {
                    "ir_version" => h.ir_version.replace(self.int("an ir_version")?).is_some(),
                    "model_version" => h.model_version.replace(self.int("a model_version")?).is_some(),
                    "producer_name" => h.producer_name.replace(self.utf8_string()?).is_some(),
                    "producer_version" => h.producer_version.replace(self.utf8_string()?).is_some(),
                    "domain" => h.domain.replace(self.utf8_string()?).is_some(),
                    _ => return self.err(at, format!("unknown model field `{key}` (known: ir_version, producer_name, producer_version, domain, model_version)")),
                };
                if dup {
                    return self.err(at, format!("model field `{key}` is given twice"));
                }
            }
            self.end_line()?;
            header = Some(h);
        }
        let mut opsets = Vec::new();
        loop {
            self.blank_lines();
            if !self.eat_word("opset") {
                break;
            }
            self.ws();
            let domain = if self.peek().is_some_and(|c| c.is_ascii_digit()) {
                String::new()
            } else {
                self.name("an opset domain or version")?.0
            };
            let version = self.int("an opset version")?;
            opsets.push(OpsetImport { domain, version });
            self.end_line()?;
        }
        self.blank_lines();
        let graph = self.graph()?;
        self.blank_lines();
        if self.peek().is_some() {
            return self.expected("end of input after the graph");
        }
        Ok(ModelAst {
            header,
            opsets,
            graph,
        })
    }

    fn graph(&mut self) -> Result<GraphAst> {
        if !self.eat_word("graph") {
            return self.expected(if self.pos == 0 {
                "`model`, `opset` or `graph`"
            } else {
                "`opset` or `graph`"
            });
        }
        self.graph_rest()
    }

    /// A graph after its `graph` keyword.
    fn graph_rest(&mut self) -> Result<GraphAst> {
        self.ws();
        let name = if self.peek() == Some('(') {
            String::new()
        } else {
            self.name("a graph name or `(`")?.0
        };
        let param = |p: &mut Self| -> Result<Param> {
            let name = p.value_ref()?;
            let ty = if p.eat(':') { p.value_type()? } else { None };
            Ok(Param { name, ty })
        };
        self.open('(')?;
        let inputs = self.seq(param)?;
        self.ws();
        if !self.rest().starts_with("->") {
            return self.expected("`->`");
        }
        self.pos += 2;
        self.open('(')?;
        let outputs = self.seq(param)?;
        self.expect('{')?;
        self.end_line()?;
        let mut g = GraphAst {
            name,
            inputs,
            outputs,
            inits: Vec::new(),
            ops: Vec::new(),
        };
        loop {
            self.blank_lines();
            if self.eat('}') {
                break;
            }
            if self.peek().is_none() {
                return self.expected("a statement or `}` to close the graph");
            }
            if self.eat_word("init") {
                g.inits.push(self.init()?);
            } else {
                g.ops.push(self.op()?);
            }
            self.end_line()?;
        }
        Ok(g)
    }

    fn init(&mut self) -> Result<InitAst> {
        let name = self.value_ref()?;
        let annotation = if self.eat(':') {
            Some(self.value_type()?)
        } else {
            None
        };
        self.expect('=')?;
        self.ws();
        let tensor = if self.at_ttype() {
            self.tensor()?
        } else {
            let at = self.pos;
            let ty = match &annotation {
                Some(Some(ValueType::Tensor(t))) => t,
                _ => return self.err(at, format!("initializer %{} needs a tensor type: `init %{0}: float[4] = ...` or `init %{0} = float[4] ...`", name.0)),
            };
            let Some(dims) = ty.static_shape() else {
                return self.err(
                    name.1,
                    format!(
                        "initializer %{} needs known dims, not {}",
                        name.0,
                        super::print::type_string(&Some(ValueType::Tensor(ty.clone())))
                    ),
                );
            };
            let elem = ty.elem;
            self.payload(elem, dims, at)?
        };
        Ok(InitAst {
            name,
            annotation,
            tensor,
        })
    }

    fn op(&mut self) -> Result<OpAst> {
        self.ws();
        let outputs = if self.peek() == Some('(') {
            self.open('(')?;
            self.close()?;
            Vec::new()
        } else {
            let mut outs = vec![self.slot()?];
            while self.eat(',') {
                outs.push(self.slot()?);
            }
            outs
        };
        self.expect('=')?;
        // The op reference: dot-separated parts, each bare or quoted, with no spaces between.
        self.ws();
        let mut parts = Vec::new();
        loop {
            if self.peek() == Some('"') {
                parts.push(self.utf8_string()?);
            } else {
                let p = self.bare(false);
                if p.is_empty() {
                    return self.expected("an op type like `Conv`");
                }
                parts.push(p.to_string());
            }
            if self.peek() == Some('.') {
                self.pos += 1;
            } else {
                break;
            }
        }
        let op_type = parts.pop().expect("at least one part");
        let mut desc = OpDesc::new(op_type);
        desc.domain = parts.join(".");
        self.open('(')?;
        let inputs = self.seq(|p| p.slot())?;
        self.ws();
        let mut subgraphs = Vec::new();
        if self.peek() == Some('{') {
            self.open('{')?;
            for (i, a) in self.seq(|p| p.attr())?.into_iter().enumerate() {
                match a {
                    AttrAst::Plain(a) => desc.attrs.push(a),
                    AttrAst::Graphs(name, graphs, list) => {
                        desc.attrs
                            .push(Attribute::new(name, AttrValue::Graphs(Vec::new())));
                        subgraphs.push((i, graphs, list));
                    }
                }
            }
        }
        let types = if self.eat(':') {
            self.ws();
            let at = self.pos;
            let mut tys = vec![self.value_type()?];
            while self.eat(',') {
                tys.push(self.value_type()?);
            }
            Some((tys, at))
        } else {
            None
        };
        let mut captures = Vec::new();
        let mut seen = Vec::new();
        loop {
            self.ws();
            let at = self.pos;
            let key = if self.eat_word("name") {
                "name"
            } else if self.eat_word("overload") {
                "overload"
            } else if self.eat_word("captures") {
                "captures"
            } else {
                break;
            };
            if seen.contains(&key) {
                return self.err(at, format!("`{key}` is given twice"));
            }
            seen.push(key);
            self.expect('=')?;
            match key {
                "name" => desc.name = self.utf8_string()?,
                "overload" => desc.overload = self.utf8_string()?,
                _ => {
                    self.open('[')?;
                    captures = self.seq(|p| p.value_ref())?;
                }
            }
        }
        self.ws();
        if self.peek() == Some('@') {
            self.pos += 1;
            self.open('{')?;
            let notes = self.seq(|p| {
                let (key, at) = p.name("an annotation key")?;
                p.expect('=')?;
                p.ws();
                Ok((key, at, p.utf8_string()?))
            })?;
            for (key, at, value) in notes {
                if desc.annotation(&key).is_some() {
                    return self.err(at, format!("annotation `{key}` is given twice"));
                }
                desc.set_annotation(key, value);
            }
        }
        Ok(OpAst {
            desc,
            inputs,
            outputs,
            types,
            captures,
            subgraphs,
        })
    }
}

enum Elem {
    Num(Lit, usize),
    Str(Vec<u8>, usize),
}

enum Item {
    Num(Lit, usize),
    Str(Bytes),
    Tensor(Tensor),
}
