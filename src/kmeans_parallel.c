/*
 * kmeans_parallel.c
 *	  The restarts of an in-memory k-means fit, shared between the backend
 *	  and parallel workers.
 *
 * Restarts are independent: restart r draws its k-means++ centres from its
 * own random stream (the seed and r), so its result does not depend on
 * which process runs it, nor in which order.  With workers, the points go
 * to a dynamic shared memory segment; the leader and the workers take the
 * next restart from a shared counter until none is left, and write each
 * result (inertia, iterations, centroids) to its own slot.  The best is the
 * lowest inertia, the lowest restart number on ties: the model is the same
 * with any number of workers, as with parallel CREATE INDEX (and pgvector's
 * parallel builds, which this follows).
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "miscadmin.h"
#include "optimizer/cost.h"
#include "port/atomics.h"
#include "storage/shm_toc.h"
#include "utils/memutils.h"

#include "kmeans.h"

/* Fits below this many points do not start workers (unless asked). */
#define KMEANS_PARALLEL_MIN_POINTS 50000

#define KMEANS_KEY_SHARED UINT64CONST(0xA1C0000000000001)
#define KMEANS_KEY_POINTS UINT64CONST(0xA1C0000000000002)
#define KMEANS_KEY_RESULTS UINT64CONST(0xA1C0000000000003)
#define KMEANS_KEY_SAMPLE UINT64CONST(0xA1C0000000000004)

/* What every participant needs, in the shared segment. */
typedef struct KMeansShared
{
	int64		n;
	int32		d;
	int32		k;
	int32		n_init;
	int32		max_iter;
	int32		algorithm;
	int64		seed;
	double		tol_abs;
	int64		seed_n;			/* points k-means++ draws from (see below) */
	pg_atomic_uint32 next;		/* the next restart to run */
	pg_atomic_uint32 done;		/* restarts finished */
	pg_atomic_uint32 next_refine;	/* the next sample fit to refine */
} KMeansShared;

/* A result slot: inertia, iterations, then k * d centroids. */
#define KMEANS_SLOT(results, k, d, r) ((results) + (Size) (r) * (2 + (Size) (k) * (d)))

PGDLLEXPORT void segment_kmeans_parallel_main(dsm_segment *seg, shm_toc *toc);

/* The random stream of restart r of a fit with this seed. */
static void
kmeans_restart_seed(KMeansRandom *rng, int64 seed, int r)
{
	kmeans_random_seed(rng, (uint64) seed + UINT64CONST(0x9E3779B97F4A7C15) * (uint64) r);
}

/*
 * The points k-means++ draws its centres from: all of them up to
 * kmeans_seed_sample_size(), else a uniform sample of that many, the same
 * for every restart (one pass over the data for all of them, and a sample
 * that stays in the CPU caches while each restart's k-means++ passes over it
 * 2k times).  FAISS and pgvector's IVF build even train on a sample; here
 * only the seeding does, the iterations run on every point.
 */
static int64
kmeans_seed_sample_size(int64 n, int k)
{
	int64		m = Max((int64) KMEANS_SEED_SAMPLE_MIN, (int64) KMEANS_SEED_SAMPLE_PER_K * k);

	return Min(n, m);
}

/*
 * A uniform sample of m of the n points, in their order (Knuth's selection
 * sampling, algorithm S), drawn from a stream of its own: it does not depend
 * on the number of workers either.
 */
static void
kmeans_seed_sample(const double *x, int64 n, int d, int64 m, int64 seed, double *out)
{
	KMeansRandom rng;
	int64		i,
				taken = 0;

	kmeans_random_seed(&rng, (uint64) seed ^ UINT64CONST(0x5A3B1E5A3B1E5A3B));
	for (i = 0; i < n && taken < m; i++)
	{
		if ((i & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
		if ((double) (n - i) * kmeans_random_double(&rng) < (double) (m - taken))
		{
			memcpy(out + taken * d, x + i * d, sizeof(double) * d);
			taken++;
		}
	}
	Assert(taken == m);
}

/*
 * The restarts whose sample fits are refined on every point: the
 * KMEANS_REFINE of lowest inertia on the sample (the lowest restart number
 * on ties), in that order, into rank[].  Every participant computes the same.
 */
static int
kmeans_refine_ranks(const KMeansShared *sh, const double *results, int *rank)
{
	int			nref = Min(sh->n_init, KMEANS_REFINE);
	int			i,
				r;

	for (i = 0; i < nref; i++)
	{
		int			best = -1;

		for (r = 0; r < sh->n_init; r++)
		{
			int			j;
			bool		taken = false;

			for (j = 0; j < i; j++)
				taken |= (rank[j] == r);
			if (taken)
				continue;
			if (best < 0 ||
				KMEANS_SLOT(results, sh->k, sh->d, r)[0] <
				KMEANS_SLOT(results, sh->k, sh->d, best)[0])
				best = r;
		}
		rank[i] = best;
	}
	return nref;
}

/*
 * Run restarts taken from the shared counter until none is left.
 *
 * When seeding draws from a sample (more points than the sample), a restart
 * is the whole fit on the sample, which stays in the CPU caches; then the
 * best few sample fits are refined on every point (a second counter), and
 * the lowest inertia on every point wins.  Starting close to a minimum, a
 * refinement takes a few passes over the points where a restart from
 * k-means++ takes tens: the restarts cost about as much as one full fit at
 * any size.  This is how FAISS and pgvector's IVF build train on a sample,
 * except that here every point is in the final iterations.
 */
static void
kmeans_run_restarts(KMeansShared *sh, const double *x, const double *seedx,
					const double *init, double *results)
{
	int64		n = sh->n;
	int			d = sh->d;
	int			k = sh->k;
	bool		sampled = (sh->seed_n < n);
	double	   *refined = KMEANS_SLOT(results, k, d, sh->n_init);
	double	   *start = palloc(sizeof(double) * k * d);
	int			rank[KMEANS_REFINE];
	int			nref;
	KMeansResult run;
	double		t0,
				t1;

	run.centers = palloc(sizeof(double) * k * d);
	run.labels = MemoryContextAllocHuge(CurrentMemoryContext, mul_size(n, sizeof(int)));
	for (;;)
	{
		uint32		r = pg_atomic_fetch_add_u32(&sh->next, 1);
		double	   *slot;

		if (r >= (uint32) sh->n_init)
			break;
		CHECK_FOR_INTERRUPTS();
		t0 = kmeans_clock();
		if (init == NULL)
		{
			KMeansRandom rng;

			kmeans_restart_seed(&rng, sh->seed, (int) r);
			kmeans_plusplus(seedx, sh->seed_n, d, k, &rng, start);
		}
		else
			memcpy(start, init, sizeof(double) * k * d);
		t1 = kmeans_clock();
		if (sampled)
			kmeans_run(seedx, sh->seed_n, d, k, start, sh->max_iter, sh->tol_abs,
					   sh->algorithm, &run);
		else
			kmeans_run(x, n, d, k, start, sh->max_iter, sh->tol_abs, sh->algorithm, &run);
		elog(DEBUG2, "k-means restart %u%s: seeding %.3f s, %d iterations %.3f s, inertia %.6f",
			 r, sampled ? " on the sample" : "", t1 - t0, run.iterations,
			 kmeans_clock() - t1, run.inertia);
		slot = KMEANS_SLOT(results, k, d, r);
		slot[0] = run.inertia;
		slot[1] = run.iterations;
		memcpy(slot + 2, run.centers, sizeof(double) * k * d);
		/* an atomic operation is a full barrier: the slot is written first */
		pg_atomic_fetch_add_u32(&sh->done, 1);
	}

	if (sampled)
	{
		/* every sample fit must be in before the ranks are known */
		while (pg_atomic_read_u32(&sh->done) < (uint32) sh->n_init)
		{
			CHECK_FOR_INTERRUPTS();
			pg_usleep(200);
		}
		pg_memory_barrier();
		nref = kmeans_refine_ranks(sh, results, rank);
		for (;;)
		{
			uint32		j = pg_atomic_fetch_add_u32(&sh->next_refine, 1);
			double	   *slot;

			if (j >= (uint32) nref)
				break;
			CHECK_FOR_INTERRUPTS();
			t0 = kmeans_clock();
			kmeans_run(x, n, d, k, KMEANS_SLOT(results, k, d, rank[j]) + 2, sh->max_iter,
					   sh->tol_abs, sh->algorithm, &run);
			elog(DEBUG2, "k-means refinement of restart %d: %d iterations %.3f s, inertia %.6f",
				 rank[j], run.iterations, kmeans_clock() - t0, run.inertia);
			slot = KMEANS_SLOT(refined, k, d, j);
			slot[0] = run.inertia;
			slot[1] = run.iterations;
			memcpy(slot + 2, run.centers, sizeof(double) * k * d);
		}
	}
	pfree(start);
	pfree(run.centers);
	pfree(run.labels);
}

/* Entry point of a parallel worker. */
void
segment_kmeans_parallel_main(dsm_segment *seg, shm_toc *toc)
{
	KMeansShared *sh = shm_toc_lookup(toc, KMEANS_KEY_SHARED, false);
	double	   *x = shm_toc_lookup(toc, KMEANS_KEY_POINTS, false);
	double	   *results = shm_toc_lookup(toc, KMEANS_KEY_RESULTS, false);
	double	   *seedx = x;

	if (sh->seed_n < sh->n)
		seedx = shm_toc_lookup(toc, KMEANS_KEY_SAMPLE, false);
	kmeans_run_restarts(sh, x, seedx, NULL, results);
}

/* Number of workers for a fit: the option, or max_parallel_workers_per_gather. */
int
kmeans_plan_workers(int64 n, int n_init, int requested)
{
	int			w;

	if (n_init < 2 || IsParallelWorker() || !IsUnderPostmaster)
		return 0;
	if (requested >= 0)
		w = requested;
	else if (n >= KMEANS_PARALLEL_MIN_POINTS)
		w = max_parallel_workers_per_gather;
	else
		w = 0;
	return Min(w, n_init - 1);
}

/*
 * Run the restarts of one fit of the points x (n x d) and return the best
 * one's centroids (k x d, into centers), inertia and iterations.  init, when
 * given, is the single start (no k-means++).  workers is the option (-1 for
 * the default).
 */
void
kmeans_best_of_restarts(const double *x, int64 n, int d, int k, const double *init,
						int n_init, int max_iter, double tol_abs, int algorithm,
						int64 seed, int workers, double *centers, double *inertia,
						int *iterations)
{
	KMeansShared local;
	KMeansShared *sh = &local;
	Size		slotsz;
	double	   *results;
	ParallelContext *pcxt = NULL;
	int			nworkers = init ? 0 : kmeans_plan_workers(n, n_init, workers);
	int			best = 0;
	int			nbest;
	double	   *best_of;
	int			r;
	double		tstart = kmeans_clock();
	int64		seed_n = init ? n : kmeans_seed_sample_size(n, k);
	Size		samplesz = mul_size(mul_size(seed_n, d), sizeof(double));
	double	   *seedx = (double *) x;

	/* on a sample, more restarts: a missed cluster costs more than they do */
	if (seed_n < n)
		n_init *= KMEANS_SAMPLE_RESTARTS;
	slotsz = mul_size(mul_size(n_init + KMEANS_REFINE, add_size(2, mul_size(k, d))),
					  sizeof(double));

	if (nworkers > 0)
	{
		Size		ptsz = mul_size(mul_size(n, d), sizeof(double));

		EnterParallelMode();
		pcxt = CreateParallelContext("segment", "segment_kmeans_parallel_main", nworkers);
		shm_toc_estimate_chunk(&pcxt->estimator, sizeof(KMeansShared));
		shm_toc_estimate_chunk(&pcxt->estimator, ptsz);
		shm_toc_estimate_chunk(&pcxt->estimator, slotsz);
		if (seed_n < n)
			shm_toc_estimate_chunk(&pcxt->estimator, samplesz);
		shm_toc_estimate_keys(&pcxt->estimator, 4);
		InitializeParallelDSM(pcxt);
		if (pcxt->seg == NULL)
		{
			/* no shared memory segment to be had: run alone */
			DestroyParallelContext(pcxt);
			ExitParallelMode();
			pcxt = NULL;
		}
		else
		{
			double	   *px = shm_toc_allocate(pcxt->toc, ptsz);

			sh = shm_toc_allocate(pcxt->toc, sizeof(KMeansShared));
			results = shm_toc_allocate(pcxt->toc, slotsz);
			memcpy(px, x, ptsz);
			x = px;
			shm_toc_insert(pcxt->toc, KMEANS_KEY_SHARED, sh);
			shm_toc_insert(pcxt->toc, KMEANS_KEY_POINTS, px);
			shm_toc_insert(pcxt->toc, KMEANS_KEY_RESULTS, results);
			if (seed_n < n)
			{
				seedx = shm_toc_allocate(pcxt->toc, samplesz);
				shm_toc_insert(pcxt->toc, KMEANS_KEY_SAMPLE, seedx);
			}
		}
	}
	if (pcxt == NULL)
	{
		results = MemoryContextAllocHuge(CurrentMemoryContext, slotsz);
		if (seed_n < n)
			seedx = MemoryContextAllocHuge(CurrentMemoryContext, samplesz);
	}
	if (seed_n < n)
		kmeans_seed_sample(x, n, d, seed_n, seed, seedx);

	sh->n = n;
	sh->d = d;
	sh->k = k;
	sh->n_init = n_init;
	sh->max_iter = max_iter;
	sh->algorithm = algorithm;
	sh->seed = seed;
	sh->tol_abs = tol_abs;
	sh->seed_n = seed_n;
	pg_atomic_init_u32(&sh->next, 0);
	pg_atomic_init_u32(&sh->done, 0);
	pg_atomic_init_u32(&sh->next_refine, 0);

	elog(DEBUG2, "k-means restarts: set-up %.3f s", kmeans_clock() - tstart);
	if (pcxt != NULL)
	{
		LaunchParallelWorkers(pcxt);
		elog(DEBUG1, "k-means restarts: %d of %d parallel workers launched",
			 pcxt->nworkers_launched, nworkers);
	}
	/* the leader takes restarts too, and all of them if no worker started */
	kmeans_run_restarts(sh, x, seedx, init, results);
	if (pcxt != NULL)
		WaitForParallelWorkersToFinish(pcxt);

	/* the lowest inertia on every point: of the restarts, or of the refinements */
	nbest = n_init;
	best_of = results;
	if (seed_n < n)
	{
		nbest = Min(n_init, KMEANS_REFINE);
		best_of = KMEANS_SLOT(results, k, d, n_init);
	}
	for (r = 1; r < nbest; r++)
		if (KMEANS_SLOT(best_of, k, d, r)[0] < KMEANS_SLOT(best_of, k, d, best)[0])
			best = r;
	*inertia = KMEANS_SLOT(best_of, k, d, best)[0];
	*iterations = (int) KMEANS_SLOT(best_of, k, d, best)[1];
	memcpy(centers, KMEANS_SLOT(best_of, k, d, best) + 2, sizeof(double) * k * d);

	if (pcxt != NULL)
	{
		DestroyParallelContext(pcxt);
		ExitParallelMode();
	}
	else
	{
		pfree(results);
		if (seedx != x)
			pfree(seedx);
	}
}
