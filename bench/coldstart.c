/*
 * coldstart.c: cold start to the first 200 on /readyz.
 *
 *   coldstart PORT PATH PROGRAM [ARGS...]
 *
 * Takes the clock, forks and execs PROGRAM ARGS (its output goes to
 * /dev/null), then polls 127.0.0.1:PORT with "GET PATH" every 0.5 ms until
 * the answer's status line says 200. Prints the elapsed milliseconds, then
 * stops the program with SIGTERM and waits for it. Gives up after 10 s
 * (exit 1). Loopback only.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* One attempt: 1 when the answer is a 200, 0 otherwise. */
static int
probe(const struct sockaddr_in *sa, const char *req, size_t req_len)
{
	char buf[64];
	ssize_t n;
	size_t got = 0;
	int fd, ok = 0;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	if (connect(fd, (const struct sockaddr *)sa, sizeof *sa) != 0)
		goto out;
	if (write(fd, req, req_len) != (ssize_t)req_len)
		goto out;
	while (got < 12) {
		n = read(fd, buf + got, sizeof buf - 1 - got);
		if (n <= 0)
			goto out;
		got += (size_t)n;
	}
	buf[got] = '\0';
	ok = strncmp(buf, "HTTP/1.1 200", 12) == 0 ||
	    strncmp(buf, "HTTP/1.0 200", 12) == 0;
out:
	close(fd);
	return ok;
}

int
main(int argc, char **argv)
{
	struct sockaddr_in sa;
	struct timespec pause_ts = { 0, 500000 };
	char req[512];
	double t0, elapsed = -1;
	pid_t pid;
	int n, status, devnull;

	if (argc < 4) {
		fprintf(stderr, "usage: %s PORT PATH PROGRAM [ARGS...]\n",
		    argv[0]);
		return 2;
	}
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)atoi(argv[1]));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
	    "Connection: close\r\n\r\n", argv[2]);
	if (n < 0 || (size_t)n >= sizeof req)
		return 2;

	t0 = now_ms();
	pid = fork();
	if (pid < 0) {
		perror("fork");
		return 1;
	}
	if (pid == 0) {
		devnull = open("/dev/null", O_WRONLY);
		if (devnull >= 0) {
			dup2(devnull, 1);
			dup2(devnull, 2);
		}
		execv(argv[3], argv + 3);
		_exit(127);
	}
	while (now_ms() - t0 < 10000) {
		if (probe(&sa, req, (size_t)n)) {
			elapsed = now_ms() - t0;
			break;
		}
		if (waitpid(pid, &status, WNOHANG) == pid) {
			fprintf(stderr, "coldstart: the program exited\n");
			return 1;
		}
		nanosleep(&pause_ts, NULL);
	}
	kill(pid, SIGTERM);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (elapsed < 0) {
		fprintf(stderr, "coldstart: no 200 within 10 s\n");
		return 1;
	}
	printf("%.2f\n", elapsed);
	return 0;
}
