/*
 * The compiled `bkpy` client: hands a command to the warm command server in about a
 * millisecond, where a Python client spends ~45 ms starting an interpreter first.
 *
 * It speaks the protocol of buildkit_py/cli/launch.py (the Python client, which stays
 * the reference): one request (descriptor count, length-prefixed JSON with argv, cwd,
 * environment, umask and the install key; stdin/stdout/stderr attached with SCM_RIGHTS),
 * then signal notices; the server answers "A" when the command starts and "X" + status.
 *
 * What it cannot know by itself is the install key (interpreter version, sys.prefix,
 * package path and version), which names the server's socket. The Python client writes
 * it, when this binary ran it, to a key file named after this binary's path; the file
 * also records this binary's identity and the stamps of the interpreter and the package,
 * so a reinstall or an upgrade makes it stale. Whenever anything is missing, stale or
 * refused (no key file, no server, "R", a string that is not UTF-8, BKPY_NO_SERVER set),
 * this program execs the Python client `bkpy-py` next to it, which runs the command
 * itself and starts a server, exactly as a plain Python install does.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define KEY_MAGIC "bkpy-launcher 1\n"
#define PYTHON_CLIENT "bkpy-py"

extern char **environ;

/* ---- SHA-256 (FIPS 180-4), for the socket name ---------------------------------- */

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block(uint32_t h[8], const unsigned char *p) {
    uint32_t w[64], a, b, c, d, e, f, g, k, t1, t2;
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    for (int i = 0; i < 64; i++) {
        t1 = k + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
        t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        k = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += k;
}

static void sha256_hex(const unsigned char *data, size_t len, char out[65]) {
    uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                     0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    unsigned char tail[128];
    size_t full = len / 64 * 64, rest = len - full;
    for (size_t off = 0; off < full; off += 64)
        sha256_block(h, data + off);
    memset(tail, 0, sizeof tail);
    memcpy(tail, data + full, rest);
    tail[rest] = 0x80;
    size_t tlen = rest < 56 ? 64 : 128;
    uint64_t bits = (uint64_t)len * 8;
    for (size_t i = 0; i < 8; i++)
        tail[tlen - 1 - i] = (unsigned char)(bits >> (8 * i));
    for (size_t off = 0; off < tlen; off += 64)
        sha256_block(h, tail + off);
    for (int i = 0; i < 8; i++)
        snprintf(out + 8 * i, 9, "%08x", h[i]);
}

/* ---- a growable buffer and the JSON request ------------------------------------ */

typedef struct {
    char *data;
    size_t len, cap;
    int bad; /* allocation failed, or a string was not UTF-8 */
} buf_t;

static void put(buf_t *b, const void *p, size_t n) {
    if (b->bad)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        char *grown = realloc(b->data, cap);
        if (!grown) {
            b->bad = 1;
            return;
        }
        b->data = grown, b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void puts_(buf_t *b, const char *s) { put(b, s, strlen(s)); }

/* Length of the well-formed UTF-8 sequence at s (as Python's strict decoder accepts:
   no overlongs, no surrogates, at most U+10FFFF), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t left) {
    unsigned char c = s[0];
    size_t n;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4, cp = c & 0x07;
    else
        return 0;
    if (left < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return n;
}

/* A JSON string. Bytes that are not UTF-8 would reach Python as surrogate escapes; rather
   than imitate that, such a request is not sent (the Python client handles it). */
static void put_json_string(buf_t *b, const char *s, size_t len) {
    const unsigned char *u = (const unsigned char *)s;
    put(b, "\"", 1);
    for (size_t i = 0; i < len;) {
        unsigned char c = u[i];
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            put(b, esc, 2), i++;
        } else if (c < 0x20 || c == 0x7f) {
            char esc[8];
            snprintf(esc, sizeof esc, "\\u%04x", c);
            puts_(b, esc), i++;
        } else {
            size_t n = utf8_seq(u + i, len - i);
            if (!n) {
                b->bad = 1;
                return;
            }
            put(b, u + i, n), i += n;
        }
    }
    put(b, "\"", 1);
}

/* ---- where things are ---------------------------------------------------------- */

static int path_join(char *out, size_t size, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, size, fmt, ap);
    va_end(ap);
    return n >= 0 && (size_t)n < size;
}

/* As launch.server_dir(). */
static int server_dir(char *out, size_t size) {
    if (geteuid() == 0)
        return path_join(out, size, "/run/bkpy");
    const char *runtime = getenv("XDG_RUNTIME_DIR");
    if (runtime && *runtime)
        return path_join(out, size, "%s/bkpy", runtime);
    return path_join(out, size, "/tmp/bkpy-%u/bkpy", (unsigned)geteuid());
}

static char self_path[PATH_MAX];

/* Replace this process with the Python client beside this binary. Never returns. */
static void run_python(char **argv) {
    char target[PATH_MAX + 16];
    const char *slash = strrchr(self_path, '/');
    int dir_len = slash ? (int)(slash - self_path) : 0;
    if (!path_join(target, sizeof target, "%.*s/%s", dir_len, self_path, PYTHON_CLIENT)) {
        fprintf(stderr, "bkpy: path too long: %s\n", self_path);
        _exit(1);
    }
    /* Tells the Python client to write the key file for this binary. */
    setenv("BKPY_LAUNCHER", self_path, 1);
    argv[0] = target;
    execv(target, argv);
    fprintf(stderr, "bkpy: cannot run %s: %s (reinstall buildkit-py)\n", target,
            strerror(errno));
    _exit(1);
}

static char *read_file(const char *path, size_t *len) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    buf_t b = {0};
    char chunk[4096];
    ssize_t n;
    while ((n = read(fd, chunk, sizeof chunk)) > 0)
        put(&b, chunk, (size_t)n);
    close(fd);
    if (n < 0 || b.bad) {
        free(b.data);
        return NULL;
    }
    put(&b, "", 1); /* a terminator for the text lines; not counted */
    *len = b.len - 1;
    return b.data;
}

static long long mtime_ns(const struct stat *st) {
    return (long long)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
}

/* The install key from this binary's key file, if the file is current. The file:
     KEY_MAGIC
     self DEV INO MTIME_NS SIZE        this binary when the key was written
     stamp MTIME_NS PATH               one line per file whose change makes it stale
     key                               then the key's bytes to the end of the file */
static char *install_key(const char *dir, size_t *key_len) {
    char hex[65], path[PATH_MAX];
    sha256_hex((const unsigned char *)self_path, strlen(self_path), hex);
    if (!path_join(path, sizeof path, "%s/launcher-%.16s.key", dir, hex))
        return NULL;
    size_t len;
    char *text = read_file(path, &len);
    if (!text)
        return NULL;
    struct stat self;
    char *line = text, *end = text + len;
    if (stat(self_path, &self) != 0 || strncmp(line, KEY_MAGIC, strlen(KEY_MAGIC)) != 0)
        goto stale;
    line += strlen(KEY_MAGIC);
    unsigned long long dev, ino, size;
    long long mt;
    if (sscanf(line, "self %llu %llu %lld %llu\n", &dev, &ino, &mt, &size) != 4 ||
        dev != (unsigned long long)self.st_dev || ino != (unsigned long long)self.st_ino ||
        mt != mtime_ns(&self) || size != (unsigned long long)self.st_size)
        goto stale;
    for (;;) {
        char *nl = memchr(line, '\n', (size_t)(end - line));
        if (!nl)
            goto stale;
        line = nl + 1;
        if (end - line >= 4 && memcmp(line, "key\n", 4) == 0)
            break;
        int off = 0;
        if (sscanf(line, "stamp %lld %n", &mt, &off) != 1 || off == 0)
            goto stale;
        nl = memchr(line, '\n', (size_t)(end - line));
        if (!nl)
            goto stale;
        *nl = '\0';
        struct stat st;
        if (stat(line + off, &st) != 0 || mtime_ns(&st) != mt)
            goto stale;
        *nl = '\n';
    }
    line += 4;
    *key_len = (size_t)(end - line);
    memmove(text, line, *key_len);
    return text;
stale:
    free(text);
    return NULL;
}

/* ---- talking to the server ----------------------------------------------------- */

#define FRAME_SIZE 5 /* struct "!ci": a kind byte, a big-endian int */

static volatile sig_atomic_t conn_fd = -1, last_signal = 0;

static void forward(int sig) {
    unsigned char frame[FRAME_SIZE] = {'S', 0, 0, 0, (unsigned char)sig};
    int saved = errno;
    last_signal = sig;
    if (conn_fd >= 0) /* MSG_NOSIGNAL: a server gone away must not kill us with SIGPIPE */
        (void)!send(conn_fd, frame, sizeof frame, MSG_NOSIGNAL);
    errno = saved;
}

static int send_request(int fd, buf_t *req, int *fds, int nfds) {
    struct iovec iov = {req->data, req->len};
    union {
        struct cmsghdr hdr;
        char space[CMSG_SPACE(sizeof(int) * 3)];
    } control;
    struct msghdr msg = {0};
    msg.msg_iov = &iov, msg.msg_iovlen = 1;
    if (nfds) {
        memset(&control, 0, sizeof control);
        msg.msg_control = control.space;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET, c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
    }
    ssize_t n;
    do
        n = sendmsg(fd, &msg, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -1;
    for (size_t off = (size_t)n; off < req->len; off += (size_t)n) {
        do
            n = send(fd, req->data + off, req->len - off, MSG_NOSIGNAL);
        while (n < 0 && errno == EINTR);
        if (n <= 0)
            return -1;
    }
    return 0;
}

static void put_u32(buf_t *b, uint32_t v) {
    unsigned char be[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    put(b, be, 4);
}

/* The request as launch.request_bytes() builds it, after launch's descriptor count. */
static int build_request(buf_t *req, char **argv, int *fds, int nfds, const char *key,
                         size_t key_len) {
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd))
        return -1; /* a deleted cwd: the Python client reports it */
    mode_t mask = umask(022);
    umask(mask);
    buf_t body = {0};
    puts_(&body, "{\"argv\": [");
    for (int i = 1; argv[i]; i++) {
        if (i > 1)
            puts_(&body, ", ");
        put_json_string(&body, argv[i], strlen(argv[i]));
    }
    puts_(&body, "], \"stdio\": [");
    for (int i = 0; i < nfds; i++) {
        char num[16];
        snprintf(num, sizeof num, i ? ", %d" : "%d", fds[i]);
        puts_(&body, num);
    }
    puts_(&body, "], \"cwd\": ");
    put_json_string(&body, cwd, strlen(cwd));
    puts_(&body, ", \"env\": {");
    int first = 1;
    for (char **e = environ; *e; e++) {
        const char *eq = strchr(*e, '=');
        if (!eq || eq == *e) /* Python's os.environ skips these too */
            continue;
        if (!first)
            puts_(&body, ", ");
        first = 0;
        put_json_string(&body, *e, (size_t)(eq - *e));
        puts_(&body, ": ");
        put_json_string(&body, eq + 1, strlen(eq + 1));
    }
    char tail[32];
    snprintf(tail, sizeof tail, "}, \"umask\": %u, \"install\": ", (unsigned)mask);
    puts_(&body, tail);
    put_json_string(&body, key, key_len);
    puts_(&body, "}");
    if (!body.bad) {
        put_u32(req, (uint32_t)nfds);
        put_u32(req, (uint32_t)body.len);
        put(req, body.data, body.len);
    }
    free(body.data);
    return body.bad || req->bad ? -1 : 0;
}

static int read_frame(int fd, char *kind, int32_t *value) {
    unsigned char frame[FRAME_SIZE];
    size_t got = 0;
    while (got < sizeof frame) {
        ssize_t n = read(fd, frame + got, sizeof frame - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    *kind = (char)frame[0];
    *value = (int32_t)((uint32_t)frame[1] << 24 | (uint32_t)frame[2] << 16 |
                       (uint32_t)frame[3] << 8 | frame[4]);
    return 0;
}

int main(int argc, char **argv) {
    (void)argc;
    ssize_t n = readlink("/proc/self/exe", self_path, sizeof self_path - 1);
    if (n <= 0) {
        fprintf(stderr, "bkpy: cannot find this program's path: %s\n", strerror(errno));
        return 1;
    }
    self_path[n] = '\0';
    const char *no_server = getenv("BKPY_NO_SERVER");
    if (no_server && *no_server && strcmp(no_server, "0") != 0)
        run_python(argv);

    char dir[PATH_MAX], sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    size_t key_len;
    char *key = server_dir(dir, sizeof dir) ? install_key(dir, &key_len) : NULL;
    if (!key)
        run_python(argv);

    /* The socket, as launch.socket_path(): sha256(BKPY_ROOT NUL install-key). */
    const char *root = getenv("BKPY_ROOT");
    buf_t name = {0};
    puts_(&name, root ? root : "");
    put(&name, "", 1);
    put(&name, key, key_len);
    char hex[65];
    if (name.bad)
        run_python(argv);
    sha256_hex((const unsigned char *)name.data, name.len, hex);
    if (!path_join(sock_path, sizeof sock_path, "%s/cmd-%.16s.sock", dir, hex))
        run_python(argv);

    int fds[3], nfds = 0;
    for (int fd = 0; fd < 3; fd++)
        if (fcntl(fd, F_GETFD) != -1)
            fds[nfds++] = fd;
    buf_t req = {0};
    if (build_request(&req, argv, fds, nfds, key, key_len) != 0)
        run_python(argv);

    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    memcpy(addr.sun_path, sock_path, strlen(sock_path) + 1);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0 ||
        send_request(fd, &req, fds, nfds) != 0)
        run_python(argv);

    conn_fd = fd;
    struct sigaction sa = {0}, previous[4];
    const int forwarded[4] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
    sa.sa_handler = forward; /* no SA_RESTART: read() below sees EINTR and goes on */
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < 4; i++)
        sigaction(forwarded[i], &sa, &previous[i]);

    int accepted = 0, retry = 0;
    char kind;
    int32_t value;
    while (!retry && read_frame(fd, &kind, &value) == 0) {
        if (kind == 'A')
            accepted = 1;
        else if (kind == 'X')
            _exit(value & 0xff);
        else if (kind == 'R')
            retry = 1;
    }
    conn_fd = -1;
    close(fd);
    for (int i = 0; i < 4; i++)
        sigaction(forwarded[i], &previous[i], NULL);
    if (retry || (!accepted && !last_signal)) /* nothing ran: the Python client runs it */
        run_python(argv);
    if (last_signal) /* the command died of the signal passed on, as it would have here */
        _exit(128 + last_signal);
    fprintf(stderr, "bkpy: the command server's worker ended without an exit status "
                    "(see `bkpy server status`); re-run with BKPY_NO_SERVER=1 to run "
                    "without it\n");
    return 1;
}
