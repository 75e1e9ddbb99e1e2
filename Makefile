EXTENSION = segment
EXTVERSION = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" $(EXTENSION).control)

MODULE_big = segment
OBJS = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))

# The install script of the current version is assembled from one file per
# concern (sql/install/), in file-name order.  The install scripts of released
# versions (sql/segment--0.1.sql) and the upgrade scripts between versions
# (sql/segment--0.1--0.2.sql) are kept as released, so that ALTER EXTENSION
# segment UPDATE works from each.
INSTALL_PARTS = $(sort $(wildcard sql/install/*.sql))
DATA_built = sql/$(EXTENSION)--$(EXTVERSION).sql
DATA = $(filter-out $(DATA_built),$(wildcard sql/$(EXTENSION)--*.sql))

TESTS = $(sort $(filter-out sql/$(EXTENSION)--%,$(wildcard sql/*.sql)))
REGRESS = $(patsubst sql/%.sql,%,$(TESTS))
REGRESS_OPTS = --inputdir=. --load-extension=$(EXTENSION)

EXTRA_CLEAN = results regression.diffs regression.out

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

sql/$(EXTENSION)--$(EXTVERSION).sql: $(INSTALL_PARTS)
	cat $^ > $@

# The two commands of the README, for those who already have make.
.PHONY: demo test fuzz memcheck
demo:
	./scripts/demo.sh
test:
	./scripts/test.sh
# Bounded fuzz run (scripts/fuzz.sh) and pg_regress under Valgrind
# (scripts/memcheck.sh; REGRESS="rfm kmeans" for a subset).
fuzz:
	./scripts/fuzz.sh
memcheck:
	./scripts/memcheck.sh $(if $(filter command line,$(origin REGRESS)),$(REGRESS))
