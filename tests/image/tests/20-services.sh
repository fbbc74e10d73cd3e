#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# create_service and enable_service in the image: a real s6 service, started
# through s6-svscan's rescan, stopped again with s6-svc.
. /app/tests/lib.sh

out=/tmp/it-service.out
t_begin "create_service writes a service that stays down"
if create_service it-hello "echo up-\$\$ >>$out
exec sleep 100000" && [ -f "$SCANDIR/it-hello/down" ] && [ -x "$SCANDIR/it-hello/run" ]; then
    t_ok
else
    t_fail "no service dir '$SCANDIR/it-hello'"
fi

t_begin "enable_service starts it under s6 and it runs"
if enable_service it-hello 30 && wait_file "$out" up- 10; then
    t_ok
else
    t_fail "$(s6-svstat "$SCANDIR/it-hello" 2>&1)"
fi

t_begin "s6 restarts it when it is killed"
pid=$(s6-svstat -o pid "$SCANDIR/it-hello")
kill -KILL "$pid"
i=0
while [ $i -lt 100 ]; do
    now=$(s6-svstat -o pid "$SCANDIR/it-hello")
    [ "$now" != "$pid" ] && [ "$now" != -1 ] && break
    i=$((i + 1))
    sleep 0.1
done
[ "$now" != "$pid" ] && [ "$now" != -1 ] && t_ok || t_fail "pid $pid, then '$now'"

t_begin "s6-svc -wd -d stops it"
if s6-svc -wD -T 10000 -d "$SCANDIR/it-hello" &&
    [ "$(s6-svstat -o up "$SCANDIR/it-hello")" = false ]; then
    t_ok
else
    t_fail "$(s6-svstat "$SCANDIR/it-hello" 2>&1)"
fi

t_done
