//! A small HTTP/1.1 client over `std::net::TcpStream` that sends exactly the framing a test asks for
//! (content-length or chunked with pauses between chunks) and keeps one connection for many requests.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::Value;

/// How long a request may take before the test fails as hung.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, Clone)]
pub enum Body {
    /// No body and no framing header (GET).
    None,
    /// Sent with `content-length`.
    Fixed(Vec<u8>),
    /// Sent with `transfer-encoding: chunked`, one HTTP chunk per element, `pause` before each but
    /// the first.
    Chunked {
        chunks: Vec<Vec<u8>>,
        pause: Duration,
    },
    /// Written as it is after the head with no framing header: the request's own headers frame it,
    /// or misframe it (a missing, short or long `content-length`).
    Raw(Vec<u8>),
}

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// Sent in order; `host` is added when absent.
    pub headers: Vec<(String, String)>,
    pub body: Body,
}

impl Request {
    pub fn new(method: &str, path: &str, body: Body) -> Request {
        Request {
            method: method.to_owned(),
            path: path.to_owned(),
            headers: Vec::new(),
            body,
        }
    }

    pub fn get(path: &str) -> Request {
        Request::new("GET", path, Body::None)
    }

    pub fn post(path: &str, body: impl Into<Vec<u8>>) -> Request {
        Request::new("POST", path, Body::Fixed(body.into()))
            .header("content-type", "application/json")
    }

    pub fn post_json(path: &str, body: &Value) -> Request {
        Request::post(path, body.to_string())
    }

    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The body's bytes, however they are framed.
    pub fn body_bytes(&self) -> Vec<u8> {
        match &self.body {
            Body::None => Vec::new(),
            Body::Fixed(bytes) | Body::Raw(bytes) => bytes.clone(),
            Body::Chunked { chunks, .. } => chunks.concat(),
        }
    }

    fn head(&self) -> Vec<u8> {
        let mut head = format!("{} {} HTTP/1.1\r\n", self.method, self.path);
        if !self.has_header("host") {
            head.push_str("host: triage.test\r\n");
        }
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        match &self.body {
            Body::None | Body::Raw(_) => {}
            Body::Fixed(bytes) => head.push_str(&format!("content-length: {}\r\n", bytes.len())),
            Body::Chunked { .. } => head.push_str("transfer-encoding: chunked\r\n"),
        }
        head.push_str("\r\n");
        head.into_bytes()
    }

    fn has_header(&self, name: &str) -> bool {
        self.headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    fn write_to(&self, mut out: &TcpStream) -> io::Result<()> {
        out.write_all(&self.head())?;
        match &self.body {
            Body::None => {}
            Body::Fixed(bytes) | Body::Raw(bytes) => out.write_all(bytes)?,
            Body::Chunked { chunks, pause } => {
                for (i, chunk) in chunks.iter().enumerate() {
                    if i > 0 {
                        std::thread::sleep(*pause);
                    }
                    if !chunk.is_empty() {
                        out.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())?;
                        out.write_all(chunk)?;
                        out.write_all(b"\r\n")?;
                    }
                }
                out.write_all(b"0\r\n\r\n")?;
            }
        }
        out.flush()
    }
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Lowercase names, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of the header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One client connection; requests are sent one after the other on it (keep-alive).
pub struct Connection {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Connection {
    pub fn open(addr: SocketAddr) -> io::Result<Connection> {
        Connection::open_with_timeout(addr, DEFAULT_TIMEOUT)
    }

    pub fn open_with_timeout(addr: SocketAddr, timeout: Duration) -> io::Result<Connection> {
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.set_nodelay(true)?;
        let reader = BufReader::new(stream.try_clone()?);
        Ok(Connection { stream, reader })
    }

    /// Sends `request` while reading the response, so a server that answers before the body is
    /// complete (413) is seen rather than blocking the write. A write error is reported only when no
    /// response arrived.
    pub fn send(&mut self, request: &Request) -> io::Result<Response> {
        match self.exchange(request) {
            Exchange::Complete(response) => Ok(response),
            Exchange::BrokenBody { error, .. } | Exchange::NoResponse(error) => Err(error),
        }
    }

    /// Like [`Connection::send`], but a response whose body broke off keeps its head and the bytes
    /// that came: a client that must tell which request a broken answer belonged to reads its
    /// headers. After anything but [`Exchange::Complete`] the connection is unusable.
    pub fn exchange(&mut self, request: &Request) -> Exchange {
        let stream = &self.stream;
        let reader = &mut self.reader;
        let head_only = request.method.eq_ignore_ascii_case("HEAD");
        std::thread::scope(|scope| {
            let writer = scope.spawn(move || request.write_to(stream));
            let response = read_response(reader, head_only);
            let written = writer
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the request writer thread panicked")));
            match (response, written) {
                (Ok(response), _) => Exchange::Complete(response),
                (Err(ReadError::BrokenBody { partial, error }), _) => {
                    Exchange::BrokenBody { partial, error }
                }
                (Err(ReadError::NoResponse(read)), Ok(())) => Exchange::NoResponse(read),
                (Err(ReadError::NoResponse(read)), Err(write)) => {
                    Exchange::NoResponse(io::Error::new(
                        read.kind(),
                        format!("{read} (and writing the request failed: {write})"),
                    ))
                }
            }
        })
    }
}

/// What came back for one request.
#[derive(Debug)]
pub enum Exchange {
    Complete(Response),
    /// The head arrived and the body broke off (a closed connection, a timeout, bad framing):
    /// `partial` holds the head and the body bytes read before `error`.
    BrokenBody {
        partial: Response,
        error: io::Error,
    },
    /// Not even a whole head arrived.
    NoResponse(io::Error),
}

/// Why reading a response failed, keeping the head when it arrived.
enum ReadError {
    NoResponse(io::Error),
    BrokenBody { partial: Response, error: io::Error },
}

impl From<ReadError> for io::Error {
    fn from(error: ReadError) -> io::Error {
        match error {
            ReadError::NoResponse(error) | ReadError::BrokenBody { error, .. } => error,
        }
    }
}

impl Connection {
    /// Pipelining: writes every request, one after the other without waiting for an answer, while
    /// reading the answers in order. A write error is reported only when an answer is missing.
    pub fn pipeline(&mut self, requests: &[Request]) -> io::Result<Vec<Response>> {
        let stream = &self.stream;
        let reader = &mut self.reader;
        std::thread::scope(|scope| {
            let writer = scope.spawn(move || {
                requests
                    .iter()
                    .try_for_each(|request| request.write_to(stream))
            });
            let responses: io::Result<Vec<Response>> = requests
                .iter()
                .map(|request| {
                    read_response(reader, request.method.eq_ignore_ascii_case("HEAD"))
                        .map_err(io::Error::from)
                })
                .collect();
            let written = writer
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the request writer thread panicked")));
            match (responses, written) {
                (Ok(responses), _) => Ok(responses),
                (Err(read), Ok(())) => Err(read),
                (Err(read), Err(write)) => Err(io::Error::new(
                    read.kind(),
                    format!("{read} (and writing the requests failed: {write})"),
                )),
            }
        })
    }
}

fn read_response(reader: &mut impl BufRead, head_only: bool) -> Result<Response, ReadError> {
    let (status, headers) = read_head(reader).map_err(ReadError::NoResponse)?;
    let mut body = Vec::new();
    match read_body(reader, status, &headers, head_only, &mut body) {
        Ok(()) => Ok(Response {
            status,
            headers,
            body,
        }),
        Err(error) => Err(ReadError::BrokenBody {
            partial: Response {
                status,
                headers,
                body,
            },
            error,
        }),
    }
}

/// The status and headers of the final response (1xx heads skipped).
fn read_head(reader: &mut impl BufRead) -> io::Result<(u16, Vec<(String, String)>)> {
    loop {
        let status_line = read_line(reader)?;
        let status = parse_status(&status_line)?;
        let headers = read_headers(reader)?;
        if !(100..200).contains(&status) {
            return Ok((status, headers));
        }
    }
}

/// Reads the body its head frames into `body`, which keeps what arrived when reading fails.
fn read_body(
    reader: &mut impl BufRead,
    status: u16,
    headers: &[(String, String)],
    head_only: bool,
    body: &mut Vec<u8>,
) -> io::Result<()> {
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    if head_only || status == 204 || status == 304 {
        Ok(())
    } else if header("transfer-encoding").is_some_and(|te| te.eq_ignore_ascii_case("chunked")) {
        read_chunked(reader, body)
    } else if let Some(length) = header("content-length") {
        let length: usize = length
            .trim()
            .parse()
            .map_err(|_| invalid(format!("bad content-length {length:?}")))?;
        body.reserve(length);
        reader
            .by_ref()
            .take(length as u64)
            .read_to_end(body)
            .map_err(timeout_context)?;
        if body.len() < length {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "the server closed the connection after {} of {length} body bytes",
                    body.len()
                ),
            ));
        }
        Ok(())
    } else {
        reader.read_to_end(body).map_err(timeout_context)?;
        Ok(())
    }
}

fn parse_status(line: &str) -> io::Result<u16> {
    let mut parts = line.splitn(3, ' ');
    match (parts.next(), parts.next()) {
        (Some(version), Some(code)) if version.starts_with("HTTP/1.") => code
            .parse()
            .map_err(|_| invalid(format!("bad status line {line:?}"))),
        _ => Err(invalid(format!("bad status line {line:?}"))),
    }
}

fn read_headers(reader: &mut impl BufRead) -> io::Result<Vec<(String, String)>> {
    let mut headers = Vec::new();
    loop {
        let line = read_line(reader)?;
        if line.is_empty() {
            return Ok(headers);
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| invalid(format!("bad header line {line:?}")))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
}

fn read_chunked(reader: &mut impl BufRead, body: &mut Vec<u8>) -> io::Result<()> {
    loop {
        let size_line = read_line(reader)?;
        let size_hex = size_line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_hex, 16)
            .map_err(|_| invalid(format!("bad chunk size line {size_line:?}")))?;
        if size == 0 {
            read_headers(reader)?; // trailers
            return Ok(());
        }
        let start = body.len();
        reader
            .by_ref()
            .take(size as u64)
            .read_to_end(body)
            .map_err(timeout_context)?;
        if body.len() - start < size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection inside a chunk",
            ));
        }
        if !read_line(reader)?.is_empty() {
            return Err(invalid("chunk not followed by CRLF".to_owned()));
        }
    }
}

/// One line without its CRLF; EOF before any byte is an error (the server closed the connection).
fn read_line(reader: &mut impl BufRead) -> io::Result<String> {
    let mut line = Vec::new();
    if reader
        .read_until(b'\n', &mut line)
        .map_err(timeout_context)?
        == 0
    {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the server closed the connection",
        ));
    }
    while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        line.pop();
    }
    String::from_utf8(line).map_err(|_| invalid("non-UTF-8 line in the response head".to_owned()))
}

fn timeout_context(error: io::Error) -> io::Error {
    match error.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => io::Error::new(
            io::ErrorKind::TimedOut,
            "no (complete) response before the timeout: the request hung",
        ),
        _ => error,
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}
