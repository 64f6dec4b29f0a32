// Virtual board harness: the Verilator model of spikeforge.firmware.top.BoardCore behind a
// pseudo-terminal or a TCP socket.
//
// Bytes read from the host are shifted into the design's UART `rx` pin bit by bit (8N1,
// `--divisor` clocks per bit); the `tx` pin is sampled mid-bit and the bytes go back to the
// host. Simulated time only advances while there is something to do (bytes to send or
// receive, or the design not `idle`); an idle board sleeps in poll(), so a served board costs
// no CPU while the host thinks.
//
// Control channel on stdin/stdout (line based, for spikeforge.sim.vboard):
//   stdout, first line:  "PTY <path>" or "TCP <port>"
//   stdin "stats\n"  ->  one JSON line: cycles, busy_cycles, rx_bytes, tx_bytes, wall_s
//   stdin "quit\n" or EOF (the parent died) -> exit 0
//
// Written for this project (no code taken from elsewhere); the Verilator C++ API calls used
// are the documented VerilatedContext / model eval() ones.

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "verilated.h"
#include "Vspikeforge_board.h"

static double now_s() {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void set_nonblock(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

struct Options {
    int divisor = 12;
    int tcp_port = -1;  // -1: pty
    long max_rx_queue = 1 << 16;
};

static Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--divisor" && i + 1 < argc) {
            o.divisor = atoi(argv[++i]);
        } else if (a == "--tcp" && i + 1 < argc) {
            o.tcp_port = atoi(argv[++i]);
        } else {
            fprintf(stderr, "vboard: unknown argument %s; usage: vboard --divisor D [--tcp PORT]\n", a.c_str());
            exit(2);
        }
    }
    if (o.divisor < 4) {
        fprintf(stderr, "vboard: --divisor %d is out of range; allowed: >= 4\n", o.divisor);
        exit(2);
    }
    return o;
}

class Board {
  public:
    explicit Board(int divisor) : div_(divisor), ctx_(new VerilatedContext), top_(new Vspikeforge_board(ctx_.get())) {
        top_->clk = 0;
        top_->rx = 1;
        top_->rst = 1;
        for (int i = 0; i < 4; ++i) tick();
        top_->rst = 0;
    }

    // One clock cycle: drive rx for this cycle, sample tx.
    void tick() {
        top_->clk = 0;
        top_->eval();
        top_->clk = 1;
        top_->eval();
        ++cycles_;
    }

    // Run one clock with the UART models; returns true if anything is still going on.
    bool step(std::deque<uint8_t>& rx_queue, std::vector<uint8_t>& tx_out) {
        // ---- host -> board: the rx shifter
        if (rx_bit_ < 0 && !rx_queue.empty()) {
            rx_byte_ = rx_queue.front();
            rx_queue.pop_front();
            rx_bit_ = 0;
            rx_timer_ = div_;
            ++rx_bytes_;
        }
        int line = 1;
        if (rx_bit_ >= 0) {
            line = rx_bit_ == 0 ? 0 : rx_bit_ <= 8 ? (rx_byte_ >> (rx_bit_ - 1)) & 1 : 1;
            if (--rx_timer_ == 0) {
                rx_timer_ = div_;
                if (++rx_bit_ == 10) rx_bit_ = -1;
            }
        }
        top_->rx = line;
        tick();
        // ---- board -> host: sample tx mid-bit
        int tx = top_->tx;
        if (tx_bit_ < 0) {
            if (!tx) {
                tx_bit_ = 0;
                tx_timer_ = div_ / 2;
            }
        } else if (--tx_timer_ == 0) {
            tx_timer_ = div_;
            if (tx_bit_ == 0) {
                if (tx) tx_bit_ = -2;  // glitch, not a start bit
                tx_byte_ = 0;
            } else if (tx_bit_ <= 8) {
                tx_byte_ |= tx << (tx_bit_ - 1);
            } else {
                if (tx) {
                    tx_out.push_back(tx_byte_);
                    ++tx_bytes_;
                } else {
                    ++tx_framing_errors_;
                }
                tx_bit_ = -2;
            }
            ++tx_bit_;
        }
        bool busy = !top_->idle || rx_bit_ >= 0 || tx_bit_ >= 0 || !rx_queue.empty();
        if (busy) ++busy_cycles_;
        return busy;
    }

    std::string stats(double wall) const {
        char buf[256];
        snprintf(buf, sizeof buf,
                 "{\"cycles\": %llu, \"busy_cycles\": %llu, \"rx_bytes\": %llu, \"tx_bytes\": %llu, "
                 "\"tx_framing_errors\": %llu, \"wall_s\": %.6f}",
                 (unsigned long long)cycles_, (unsigned long long)busy_cycles_, (unsigned long long)rx_bytes_,
                 (unsigned long long)tx_bytes_, (unsigned long long)tx_framing_errors_, wall);
        return buf;
    }

  private:
    int div_;
    std::unique_ptr<VerilatedContext> ctx_;
    std::unique_ptr<Vspikeforge_board> top_;
    uint64_t cycles_ = 0, busy_cycles_ = 0, rx_bytes_ = 0, tx_bytes_ = 0, tx_framing_errors_ = 0;
    int rx_bit_ = -1, rx_timer_ = 0, rx_byte_ = 0;
    int tx_bit_ = -1, tx_timer_ = 0, tx_byte_ = 0;
};

// Write as much of `out` as the fd takes now; drop it all if the peer is gone.
static void flush_out(int fd, std::vector<uint8_t>& out) {
    if (out.empty()) return;
    if (fd < 0) {
        out.clear();
        return;
    }
    ssize_t n = write(fd, out.data(), out.size());
    if (n > 0) {
        out.erase(out.begin(), out.begin() + n);
    } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
        out.clear();
    }
}

int main(int argc, char** argv) {
    signal(SIGPIPE, SIG_IGN);
    Options opt = parse(argc, argv);
    int listen_fd = -1, io_fd = -1, slave_fd = -1;
    if (opt.tcp_port >= 0) {
        listen_fd = socket(AF_INET, SOCK_STREAM, 0);
        int one = 1;
        setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        struct sockaddr_in addr;
        memset(&addr, 0, sizeof addr);
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = htons(opt.tcp_port);
        if (bind(listen_fd, (struct sockaddr*)&addr, sizeof addr) < 0 || listen(listen_fd, 1) < 0) {
            fprintf(stderr, "vboard: cannot listen on TCP port %d: %s\n", opt.tcp_port, strerror(errno));
            return 1;
        }
        socklen_t len = sizeof addr;
        getsockname(listen_fd, (struct sockaddr*)&addr, &len);
        set_nonblock(listen_fd);
        printf("TCP %d\n", ntohs(addr.sin_port));
    } else {
        io_fd = posix_openpt(O_RDWR | O_NOCTTY);
        if (io_fd < 0 || grantpt(io_fd) < 0 || unlockpt(io_fd) < 0) {
            fprintf(stderr, "vboard: cannot open a pseudo-terminal: %s\n", strerror(errno));
            return 1;
        }
        const char* path = ptsname(io_fd);
        // Keep the slave open (raw) so the master never sees a hang-up between host sessions.
        slave_fd = open(path, O_RDWR | O_NOCTTY);
        struct termios t;
        if (slave_fd >= 0 && tcgetattr(slave_fd, &t) == 0) {
            cfmakeraw(&t);
            tcsetattr(slave_fd, TCSANOW, &t);
        }
        set_nonblock(io_fd);
        printf("PTY %s\n", path);
    }
    fflush(stdout);
    set_nonblock(0);

    Board board(opt.divisor);
    std::deque<uint8_t> rx_queue;
    std::vector<uint8_t> tx_out;
    std::string ctl;
    double t0 = now_s();
    uint8_t buf[4096];
    bool busy = true;
    for (;;) {
        // Service the file descriptors every 256 cycles while busy; block while idle.
        struct pollfd fds[2];
        int nfds = 0;
        fds[nfds++] = {0, POLLIN, 0};
        int sock = io_fd >= 0 ? io_fd : listen_fd;
        if (sock >= 0) fds[nfds++] = {sock, (short)(POLLIN | (tx_out.empty() ? 0 : POLLOUT)), 0};
        int timeout = busy || !tx_out.empty() ? 0 : 50;
        if (busy && tx_out.empty()) timeout = 0;
        poll(fds, nfds, timeout);
        if (fds[0].revents & (POLLIN | POLLHUP)) {
            ssize_t n = read(0, buf, sizeof buf);
            if (n == 0) return 0;  // the parent is gone
            if (n > 0) {
                ctl.append((const char*)buf, n);
                size_t nl;
                while ((nl = ctl.find('\n')) != std::string::npos) {
                    std::string cmd = ctl.substr(0, nl);
                    ctl.erase(0, nl + 1);
                    if (cmd == "quit") return 0;
                    if (cmd == "stats") {
                        printf("%s\n", board.stats(now_s() - t0).c_str());
                        fflush(stdout);
                    }
                }
            }
        }
        if (nfds > 1 && fds[1].revents) {
            if (io_fd < 0 && listen_fd >= 0) {
                int c = accept(listen_fd, nullptr, nullptr);
                if (c >= 0) {
                    int one = 1;
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    set_nonblock(c);
                    io_fd = c;
                }
            } else if ((long)rx_queue.size() < opt.max_rx_queue) {
                ssize_t n = read(io_fd, buf, sizeof buf);
                if (n > 0) {
                    rx_queue.insert(rx_queue.end(), buf, buf + n);
                } else if (opt.tcp_port >= 0 && (n == 0 || (errno != EAGAIN && errno != EINTR))) {
                    close(io_fd);  // the host disconnected: wait for the next one
                    io_fd = -1;
                }
            }
        }
        flush_out(io_fd, tx_out);
        // Simulate: a burst of cycles, stopping early once the design is idle.
        busy = false;
        for (int i = 0; i < 4096; ++i) {
            busy = board.step(rx_queue, tx_out);
            if (!busy && tx_out.empty()) break;
            if (tx_out.size() >= 64) break;
        }
        flush_out(io_fd, tx_out);
    }
}
