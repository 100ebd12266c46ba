#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/runs.h"

static struct run_sum *sum_of(struct run_list *l, const char *id)
{
	for (size_t i = l->n; i-- > 0;)
		if (!strcmp(l->r[i].id, id))
			return &l->r[i];
	l->r = xrealloc(l->r, (l->n + 1) * sizeof(*l->r));
	l->r[l->n] = (struct run_sum){.duration_ms = -1, .events = -1, .lost = -1};
	snprintf(l->r[l->n].id, sizeof(l->r[l->n].id), "%s", id);
	l->r[l->n].interrupted = true;
	return &l->r[l->n++];
}

/* --trigger pairs; else sudo's user, the SSH client, or the program that ran runseal. */
char *run_trigger(const struct lr_ent *e)
{
	int t = lr_get(e, "trigger"), g, x;
	struct jbuf b = {0};

	if (t < 0 || e->tok[t].type != J_OBJ)
		return NULL;
	jb_raw(&b, "", 0);
	g = json_get(e->tok, t, "given");
	for (unsigned i = (unsigned)g + 1, k = 0; g >= 0 && k < e->tok[g].count; k++) {
		unsigned v = e->tok[i].next;

		if (b.len)
			jb_raw(&b, ", ", 2);
		json_unstr(&e->tok[i], &b);
		jb_putc(&b, '=');
		json_unstr(&e->tok[v], &b);
		i = e->tok[v].next;
	}
	static const char *const who[][2] = {{"sudo_user", "sudo "}, {"ssh_connection", "ssh "}};
	for (size_t k = 0; k < 2; k++) {
		x = json_get(e->tok, t, who[k][0]);
		if (x < 0 || e->tok[x].type != J_STR)
			continue;
		if (b.len)
			jb_raw(&b, ", ", 2);
		jb_raw(&b, who[k][1], strlen(who[k][1]));
		json_unstr(&e->tok[x], &b);
	}
	x = json_at(e->tok, json_get(e->tok, t, "ancestry"), 0);
	x = x >= 0 ? json_get(e->tok, x, "exe") : -1;
	if (!b.len && x >= 0 && e->tok[x].type == J_STR) {
		struct jbuf exe = {0};
		const char *base;

		json_unstr(&e->tok[x], &exe);
		base = strrchr(exe.p, '/');
		jb_raw(&b, "via ", 4);
		jb_raw(&b, base ? base + 1 : exe.p, strlen(base ? base + 1 : exe.p));
		jb_free(&exe);
	}
	return b.p;
}

static void end_of(struct run_sum *s, const struct lr_ent *e)
{
	int t = lr_get(e, "interrupted");

	s->ended = true;
	s->end_ns = e->time_ns;
	free(s->status);
	s->status = lr_str(e, "status", NULL);
	lr_int(e, "duration_ms", &s->duration_ms);
	lr_int(e, "events", &s->events);
	lr_int(e, "lost", &s->lost);
	s->interrupted = t >= 0 && !json_is(&e->tok[t], "null") && !json_is(&e->tok[t], "false");
}

/* Counts as entries stream by; keeps none of them (runs of a long log stay small). */
static bool tally(void *ctx, const struct lr_ent *e)
{
	struct run_list *l = ctx;
	struct run_sum *s;

	if (!e->run[0])
		return false;
	s = sum_of(l, e->run);
	if (!s->records++)
		s->first_seq = e->seq;
	s->last_seq = e->seq;
	switch (e->kind) {
	case REC_RUN_START:
		s->runbook = lr_str(e, "runbook", NULL);
		s->runbook_name = lr_str(e, "runbook_name", NULL);
		s->trigger = run_trigger(e);
		snprintf(s->start, sizeof(s->start), "%s", e->time);
		s->start_ns = e->time_ns;
		break;
	case REC_STEP_START:
		s->steps++;
		break;
	case REC_LOSS:
		s->losses++;
		break;
	case REC_RUN_END:
		end_of(s, e);
		break;
	default:
		break;
	}
	return false;
}

int runs_collect(struct run_list *l, const struct lr_opts *o, char *err, size_t errlen)
{
	struct lr_opts k = *o;

	*l = (struct run_list){0};
	k.keep = tally;
	k.ctx = l;
	return lr_open(&l->reader, &k, err, errlen);
}

void runs_free(struct run_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->r[i].runbook);
		free(l->r[i].runbook_name);
		free(l->r[i].status);
		free(l->r[i].trigger);
	}
	free(l->r);
	lr_close(l->reader);
	*l = (struct run_list){0};
}

const struct run_sum *runs_find(const struct run_list *l, const char *arg, char *err, size_t errlen)
{
	const struct run_sum *found = NULL;
	size_t n = strlen(arg);

	if (!l->n) {
		snprintf(err, errlen, "the log has no verified run");
		return NULL;
	}
	if (!strcmp(arg, "last"))
		return &l->r[l->n - 1];
	for (size_t i = 0; i < l->n; i++) {
		if (!strcmp(l->r[i].id, arg))
			return &l->r[i];
		if (n >= 4 && !strncmp(l->r[i].id, arg, n)) {
			if (found) {
				snprintf(err, errlen, "run %s: more than one run starts so", arg);
				return NULL;
			}
			found = &l->r[i];
		}
	}
	if (!found)
		snprintf(err, errlen,
			 "run %s: not in the log (`runseal runs` lists them; a prefix needs 4 "
			 "characters at least)",
			 arg);
	return found;
}

size_t runs_before(const struct run_list *l, const struct run_sum *r, const struct run_sum **out,
		   size_t max)
{
	size_t k = 0;

	for (size_t i = (size_t)(r - l->r); i-- > 0 && k < max;) {
		const struct run_sum *o = &l->r[i];

		if (o->runbook_name && r->runbook_name && !strcmp(o->runbook_name, r->runbook_name))
			out[k++] = o;
	}
	return k;
}
