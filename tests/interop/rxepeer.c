/* rxepeer: the Linux side of the ndkrs interop scenarios (librdmacm, RC, RDMA_PS_TCP).
 *
 *   rxepeer -s [-p PORT] [-n CONNS] [-j] [-R N] [-S N] [-z BYTES] [-d SECS] [-w SECS]
 *   rxepeer -c ADDR [-p PORT] [-R N] [-S N] [-z BYTES] [-d SECS] [-w SECS]
 *
 *   -s         listen on PORT (default 7500) for CONNS connection requests (default 1)
 *   -c ADDR    connect to ADDR:PORT
 *   -j         reject every request (rdma_reject: IB CM REJ reason 28, consumer defined)
 *   -R N       receives of BYTES posted before accepting / connecting (default 4)
 *   -S N       Sends of BYTES each, posted once the connection is established (default 0)
 *   -z BYTES   message size (default 64)
 *   -d SECS    call rdma_disconnect SECS after ESTABLISHED (default 0: never; wait for
 *              the peer's disconnect)
 *   -w SECS    give up after SECS in all (default 120)
 *
 * Every line it prints starts with "RXEPEER [seconds]"; the harness reads them. The last
 * line is "RXEPEER_DONE established=E disconnected=D rejected=R recv_ok=N send_ok=N
 * flushed=N" and the exit status is 0 unless something failed outright.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <rdma/rdma_cma.h>

#define MAXC 8

static double t0;
static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}
static void say(const char *fmt, ...) {
  va_list ap;
  printf("RXEPEER [%8.3f] ", now() - t0);
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  printf("\n");
  fflush(stdout);
}

struct conn {
  struct rdma_cm_id *id;
  struct ibv_pd *pd;
  struct ibv_cq *cq;
  struct ibv_mr *mr;
  char *buf;
  double disc_at; /* 0: none scheduled */
  int live;
};

static int nrecv = 4, nsend = 0, size = 64, delay = 0;
static int established, disconnected, rejected, recv_ok, send_ok, flushed, failures;
static struct conn conns[MAXC];

static struct conn *conn_of(struct rdma_cm_id *id) {
  for (int i = 0; i < MAXC; i++)
    if (conns[i].id == id) return &conns[i];
  return NULL;
}

static struct conn *setup_qp(struct rdma_cm_id *id) {
  struct conn *c = NULL;
  for (int i = 0; i < MAXC && !c; i++)
    if (!conns[i].id) c = &conns[i];
  if (!c) { say("too many connections"); return NULL; }
  memset(c, 0, sizeof *c);
  c->id = id;
  int depth = nrecv + nsend + 1;
  c->pd = ibv_alloc_pd(id->verbs);
  c->cq = ibv_create_cq(id->verbs, 2 * depth, NULL, NULL, 0);
  c->buf = calloc(1, (size_t)size * (nrecv + 1));
  if (!c->pd || !c->cq || !c->buf) { say("resources failed"); return NULL; }
  c->mr = ibv_reg_mr(c->pd, c->buf, (size_t)size * (nrecv + 1), IBV_ACCESS_LOCAL_WRITE);
  if (!c->mr) { say("ibv_reg_mr failed: %s", strerror(errno)); return NULL; }
  struct ibv_qp_init_attr a;
  memset(&a, 0, sizeof a);
  a.send_cq = c->cq;
  a.recv_cq = c->cq;
  a.qp_type = IBV_QPT_RC;
  a.sq_sig_all = 1;
  a.cap.max_send_wr = nsend + 1;
  a.cap.max_recv_wr = nrecv + 1;
  a.cap.max_send_sge = 1;
  a.cap.max_recv_sge = 1;
  if (rdma_create_qp(id, c->pd, &a)) { say("rdma_create_qp failed: %s", strerror(errno)); return NULL; }
  for (int i = 0; i < nrecv; i++) {
    struct ibv_sge s = {(uintptr_t)(c->buf + (size_t)size * (i + 1)), size, c->mr->lkey};
    struct ibv_recv_wr r, *bad;
    memset(&r, 0, sizeof r);
    r.wr_id = 100 + i;
    r.sg_list = &s;
    r.num_sge = 1;
    if (ibv_post_recv(id->qp, &r, &bad)) { say("ibv_post_recv failed"); return NULL; }
  }
  c->live = 1;
  return c;
}

static void post_sends(struct conn *c) {
  memset(c->buf, 'L', size);
  for (int i = 0; i < nsend; i++) {
    struct ibv_sge s = {(uintptr_t)c->buf, size, c->mr->lkey};
    struct ibv_send_wr w, *bad;
    memset(&w, 0, sizeof w);
    w.wr_id = 200 + i;
    w.sg_list = &s;
    w.num_sge = 1;
    w.opcode = IBV_WR_SEND;
    if (ibv_post_send(c->id->qp, &w, &bad)) { say("ibv_post_send failed"); failures++; return; }
  }
  say("posted %d sends of %d bytes", nsend, size);
}

static void poll_cq(struct conn *c) {
  struct ibv_wc wc[8];
  int n;
  while (c->cq && (n = ibv_poll_cq(c->cq, 8, wc)) > 0) {
    for (int i = 0; i < n; i++) {
      int recv = wc[i].opcode & IBV_WC_RECV;
      if (wc[i].status == IBV_WC_SUCCESS) {
        if (recv) recv_ok++; else send_ok++;
        say("wc %s ok bytes %u", recv ? "recv" : "send", wc[i].byte_len);
      } else {
        if (wc[i].status == IBV_WC_WR_FLUSH_ERR) flushed++;
        say("wc %s status %d (%s)", recv ? "recv" : "send", wc[i].status,
            ibv_wc_status_str(wc[i].status));
      }
    }
  }
}

int main(int argc, char **argv) {
  int server = 0, reject = 0, want = 1, waitmax = 120, op;
  char *addr = NULL, *port = "7500";
  t0 = now();
  while ((op = getopt(argc, argv, "sc:p:n:jR:S:z:d:w:")) != -1) {
    switch (op) {
    case 's': server = 1; break;
    case 'c': addr = optarg; break;
    case 'p': port = optarg; break;
    case 'n': want = atoi(optarg); break;
    case 'j': reject = 1; break;
    case 'R': nrecv = atoi(optarg); break;
    case 'S': nsend = atoi(optarg); break;
    case 'z': size = atoi(optarg); break;
    case 'd': delay = atoi(optarg); break;
    case 'w': waitmax = atoi(optarg); break;
    default: fprintf(stderr, "usage: see the comment at the top of rxepeer.c\n"); return 2;
    }
  }
  if (!server && !addr) { fprintf(stderr, "need -s or -c ADDR\n"); return 2; }
  if (size < 1) size = 1;

  struct rdma_event_channel *ch = rdma_create_event_channel();
  struct rdma_cm_id *id;
  if (!ch || rdma_create_id(ch, &id, NULL, RDMA_PS_TCP)) { perror("rdma_create_id"); return 1; }
  struct rdma_conn_param cp;
  memset(&cp, 0, sizeof cp);
  cp.responder_resources = 1;
  cp.initiator_depth = 1;
  cp.retry_count = 7;
  cp.rnr_retry_count = 7;

  struct addrinfo *ai;
  if (getaddrinfo(server ? "0.0.0.0" : addr, port, NULL, &ai)) { say("getaddrinfo failed"); return 1; }
  int finished = 0; /* connections that reached an end (disconnected, rejected, error) */
  if (server) {
    if (rdma_bind_addr(id, ai->ai_addr) || rdma_listen(id, 8)) { perror("listen"); return 1; }
    say("LISTENING port %s", port);
  } else {
    if (rdma_resolve_addr(id, NULL, ai->ai_addr, 2000)) { perror("rdma_resolve_addr"); return 1; }
  }

  double deadline = now() + waitmax;
  while (finished < want && now() < deadline) {
    /* completions, scheduled disconnects, then CM events */
    double next = deadline;
    for (int i = 0; i < MAXC; i++) {
      if (!conns[i].id) continue;
      poll_cq(&conns[i]);
      if (conns[i].disc_at > 0 && now() >= conns[i].disc_at) {
        conns[i].disc_at = 0;
        say("DISCONNECTING");
        if (rdma_disconnect(conns[i].id)) say("rdma_disconnect failed: %s", strerror(errno));
      }
      if (conns[i].disc_at > 0 && conns[i].disc_at < next) next = conns[i].disc_at;
    }
    int tmo = (int)((next - now()) * 1000);
    if (tmo > 20) tmo = 20;
    if (tmo < 0) tmo = 0;
    struct pollfd p = {ch->fd, POLLIN, 0};
    if (poll(&p, 1, tmo) <= 0) continue;
    struct rdma_cm_event *e;
    if (rdma_get_cm_event(ch, &e)) continue;
    struct rdma_cm_id *eid = e->id;
    int ev = e->event, status = e->status;
    say("EVENT %s status %d", rdma_event_str(e->event), status);
    struct conn *c;
    switch (ev) {
    case RDMA_CM_EVENT_ADDR_RESOLVED:
      rdma_ack_cm_event(e);
      if (rdma_resolve_route(eid, 2000)) { say("rdma_resolve_route failed"); finished++; failures++; }
      continue;
    case RDMA_CM_EVENT_ROUTE_RESOLVED:
      rdma_ack_cm_event(e);
      if (!setup_qp(eid) || rdma_connect(eid, &cp)) { say("connect failed"); finished++; failures++; }
      continue;
    case RDMA_CM_EVENT_CONNECT_REQUEST:
      rdma_ack_cm_event(e);
      if (reject) {
        rdma_reject(eid, NULL, 0);
        say("REJECTED the request");
        rejected++;
        finished++;
        rdma_destroy_id(eid);
      } else if (!setup_qp(eid) || rdma_accept(eid, &cp)) {
        say("accept failed");
        failures++;
        finished++;
      }
      continue;
    case RDMA_CM_EVENT_ESTABLISHED:
      rdma_ack_cm_event(e);
      established++;
      say("ESTABLISHED");
      if ((c = conn_of(eid))) {
        if (nsend) post_sends(c);
        if (delay > 0) c->disc_at = now() + delay;
      }
      continue;
    case RDMA_CM_EVENT_DISCONNECTED:
      rdma_ack_cm_event(e);
      disconnected++;
      say("DISCONNECTED");
      if ((c = conn_of(eid))) {
        if (c->disc_at > 0) say("peer disconnected first");
        c->disc_at = 0;
        rdma_disconnect(eid);
        /* let flushed completions arrive, then count them */
        usleep(100000);
        poll_cq(c);
        rdma_destroy_qp(eid);
        c->live = 0;
        if (server) rdma_destroy_id(eid);
        c->id = NULL;
      }
      finished++;
      continue;
    case RDMA_CM_EVENT_REJECTED:
      say("REJECTED status %d", status);
      rdma_ack_cm_event(e);
      rejected++;
      finished++;
      continue;
    default:
      rdma_ack_cm_event(e);
      if (ev == RDMA_CM_EVENT_UNREACHABLE || ev == RDMA_CM_EVENT_CONNECT_ERROR ||
          ev == RDMA_CM_EVENT_ADDR_ERROR || ev == RDMA_CM_EVENT_ROUTE_ERROR) {
        failures++;
        finished++;
      }
      continue;
    }
  }
  for (int i = 0; i < MAXC; i++) if (conns[i].id) poll_cq(&conns[i]);
  if (finished < want) { say("TIMEOUT after %d s", waitmax); failures++; }
  printf("RXEPEER_DONE established=%d disconnected=%d rejected=%d recv_ok=%d send_ok=%d flushed=%d failures=%d\n",
         established, disconnected, rejected, recv_ok, send_ok, flushed, failures);
  fflush(stdout);
  return failures ? 1 : 0;
}
