"""Devices: accounts, digest authentication, the auth failure guard, registrar, location.

How the driver serves one REGISTER (every object here is pure; time is passed in):

    verdict = guard.check(src.host, now)              # BLOCK -> 403 (or drop); SLOW -> delay
    result = digest.verify(req, realm, directory, now)
    NO_CREDENTIALS -> 401 + digest.challenge_headers(realm, now)
    STALE          -> 401 + digest.challenge_headers(realm, now, stale=True)
    FAILED         -> guard.record_failure(src.host, now); 401 + fresh challenge (the same
                      answer for an unknown user and a wrong password)
    OK             -> guard.record_success(src.host, now)
                      out = registrar.process(req, result.account, source, now)
                      (memory is updated at once) then
                      try: await repository.apply(out.changes)   # group commit
                      except: registrar.rollback(out); answer 500
                      answer out.response(req, to_tag)
    at start:  location.load(await repository.load_unexpired(now))
    periodically: location.sweep(now); await repository.delete_expired(now)
"""
