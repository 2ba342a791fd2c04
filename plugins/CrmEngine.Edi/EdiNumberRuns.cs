namespace CrmEngine.Edi;

/// <summary>
/// The set of control numbers seen in a group, kept as sorted runs of consecutive numbers: partners number their sets
/// 1, 2, 3..., so a group of a million sets takes one run, not a million entries (the reader's memory must not grow
/// with the file). Exact for any order; numbers that are not consecutive cost one run each.
/// </summary>
internal sealed class EdiNumberRuns
{
    private readonly List<(long Start, long End)> _runs = [];
    private int _last;

    public int RunCount => _runs.Count;

    public void Clear()
    {
        _runs.Clear();
        _last = 0;
    }

    /// <summary>Adds <paramref name="n"/>; false when it was already there.</summary>
    public bool Add(long n)
    {
        // The usual case: one more than the end of the run added to last.
        if (_last < _runs.Count && _runs[_last].End == n - 1 && n != long.MinValue)
        {
            if (_last + 1 < _runs.Count && _runs[_last + 1].Start <= n)
            {
                return false;
            }

            Extend(_last, n);
            return true;
        }

        // Binary search for the last run starting at or before n.
        int lo = 0, hi = _runs.Count - 1, at = -1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            if (_runs[mid].Start <= n)
            {
                at = mid;
                lo = mid + 1;
            }
            else
            {
                hi = mid - 1;
            }
        }

        if (at >= 0 && _runs[at].End >= n)
        {
            return false;
        }

        if (at >= 0 && _runs[at].End == n - 1)
        {
            Extend(at, n);
        }
        else if (at + 1 < _runs.Count && _runs[at + 1].Start == n + 1)
        {
            _runs[at + 1] = (n, _runs[at + 1].End);
            _last = at + 1;
        }
        else
        {
            _runs.Insert(at + 1, (n, n));
            _last = at + 1;
        }

        return true;
    }

    /// <summary>Run <paramref name="i"/> now ends at <paramref name="n"/>; merged with the next run when they touch.</summary>
    private void Extend(int i, long n)
    {
        if (i + 1 < _runs.Count && _runs[i + 1].Start == n + 1)
        {
            _runs[i] = (_runs[i].Start, _runs[i + 1].End);
            _runs.RemoveAt(i + 1);
        }
        else
        {
            _runs[i] = (_runs[i].Start, n);
        }

        _last = i;
    }
}
