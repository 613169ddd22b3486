// The test guest's HTTP server: the one process the VM exists to run.
//
//   GET /         -> 200 "ok"
//   GET /counter  -> 200 "<n>": how many /counter requests were served, this one
//                    included. Kept in memory only, so a value that keeps rising
//                    across sleep/restore proves the guest's RAM survived.
//   GET /healthz  -> 200 "ok"
//   anything else -> 404
//
// HTTP/1.1, one request per connection (Connection: close), single-threaded.
// Port: argv[1], else "s2z.port=" on /proc/cmdline, else 8080.
// Prints "s2z-guest: ready <addr>:<port> mtu <bytes>" on stdout (the console)
// once listening (the MTU of that address's interface, as the NIC told it),
// and "s2z-guest: counter <n>" for every /counter request, which tests and
// humans watch for on the serial console.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

enum { kDefaultPort = 8080, kRequestMax = 8192, kReadTimeoutSec = 5 };

// Reads "s2z.port=N" from the kernel command line; 0 when absent or invalid.
static int portFromCmdline(void) {
  FILE* f = fopen("/proc/cmdline", "r");
  if (f == NULL) return 0;
  char line[4096];
  size_t n = fread(line, 1, sizeof(line) - 1, f);
  fclose(f);
  line[n] = '\0';
  for (char* tok = strtok(line, " \n"); tok != NULL; tok = strtok(NULL, " \n")) {
    if (strncmp(tok, "s2z.port=", 9) == 0) {
      long p = strtol(tok + 9, NULL, 10);
      if (p > 0 && p < 65536) return (int)p;
    }
  }
  return 0;
}

// The first non-loopback IPv4 address and its interface's MTU (0 if
// unknown), for the ready line only.
static void firstAddress(char* out, size_t len, int* mtu) {
  snprintf(out, len, "0.0.0.0");
  *mtu = 0;
  struct ifaddrs* list = NULL;
  if (getifaddrs(&list) != 0) return;
  for (struct ifaddrs* it = list; it != NULL; it = it->ifa_next) {
    if (it->ifa_addr == NULL || it->ifa_addr->sa_family != AF_INET) continue;
    if (strcmp(it->ifa_name, "lo") == 0) continue;
    inet_ntop(AF_INET, &((struct sockaddr_in*)it->ifa_addr)->sin_addr, out, len);
    struct ifreq req = {0};
    snprintf(req.ifr_name, sizeof(req.ifr_name), "%s", it->ifa_name);
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s >= 0 && ioctl(s, SIOCGIFMTU, &req) == 0) *mtu = req.ifr_mtu;
    if (s >= 0) close(s);
    break;
  }
  freeifaddrs(list);
}

static int writeAll(int fd, const char* buf, size_t len) {
  while (len > 0) {
    ssize_t w = write(fd, buf, len);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    buf += w;
    len -= (size_t)w;
  }
  return 0;
}

// Reads until the end of the request head ("\r\n\r\n"), the peer closes, the
// buffer fills or the read timeout fires. Returns bytes read, -1 on error.
// Requests may arrive in any number of segments, so this loops.
static ssize_t readHead(int fd, char* buf, size_t cap) {
  size_t len = 0;
  while (len < cap - 1) {
    ssize_t r = read(fd, buf + len, cap - 1 - len);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return len > 0 ? (ssize_t)len : -1;
    if (r == 0) break;
    len += (size_t)r;
    buf[len] = '\0';
    if (strstr(buf, "\r\n\r\n") != NULL || strstr(buf, "\n\n") != NULL) break;
  }
  buf[len] = '\0';
  return (ssize_t)len;
}

static void respond(int fd, int status, const char* body) {
  const char* reason = status == 200 ? "OK" : status == 404 ? "Not Found" : "Bad Request";
  char out[512];
  int n = snprintf(out, sizeof(out),
                   "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                   "Connection: close\r\n\r\n%s",
                   status, reason, strlen(body), body);
  if (n > 0) writeAll(fd, out, (size_t)n);
}

static void serve(int fd, unsigned long* counter) {
  char req[kRequestMax];
  ssize_t n = readHead(fd, req, sizeof(req));
  if (n <= 0) return;
  char method[16], path[1024];
  if (sscanf(req, "%15s %1023s", method, path) != 2) {
    respond(fd, 400, "bad request\n");
    return;
  }
  char* query = strchr(path, '?');
  if (query != NULL) *query = '\0';
  if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
    respond(fd, 400, "only GET\n");
  } else if (strcmp(path, "/") == 0 || strcmp(path, "/healthz") == 0) {
    respond(fd, 200, "ok\n");
  } else if (strcmp(path, "/counter") == 0) {
    char body[32];
    snprintf(body, sizeof(body), "%lu\n", ++*counter);
    respond(fd, 200, body);
    // One console line per count: tests follow the guest's console output
    // through the task's stdout FIFO across sleeps and wakes.
    printf("s2z-guest: counter %lu\n", *counter);
    fflush(stdout);
  } else {
    respond(fd, 404, "not found\n");
  }
}

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  int port = argc > 1 ? atoi(argv[1]) : 0;
  if (port <= 0 || port > 65535) port = portFromCmdline();
  if (port == 0) port = kDefaultPort;

  int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (ls < 0) {
    perror("s2z-guest: socket");
    return 1;
  }
  int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  if (bind(ls, (struct sockaddr*)&addr, sizeof(addr)) != 0 || listen(ls, 128) != 0) {
    perror("s2z-guest: bind/listen");
    return 1;
  }
  char ip[INET_ADDRSTRLEN];
  int mtu;
  firstAddress(ip, sizeof(ip), &mtu);
  printf("s2z-guest: ready %s:%d mtu %d\n", ip, port, mtu);
  fflush(stdout);

  unsigned long counter = 0;
  for (;;) {
    int c = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0) continue;  // EINTR, ECONNABORTED, EMFILE: keep serving
    // A client that never finishes its request must not wedge the only thread.
    struct timeval tv = {.tv_sec = kReadTimeoutSec};
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    serve(c, &counter);
    close(c);
  }
}
