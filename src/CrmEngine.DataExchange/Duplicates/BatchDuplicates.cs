using CrmEngine.Abstractions.Model;

namespace CrmEngine.DataExchange.Duplicates;

/// <summary>
/// The phone and fuzzy-name rules among the rows of an import that the store cannot see yet: the batch being built and
/// the batch the writer is still storing (the store look-ups of a batch read the store as it was before both). In
/// memory, per batch: phones by their normalised key, names by place (postcode, else city) and the scan's name blocks,
/// so a row is compared only with the rows of its block. E-mail needs nothing here: rows sharing one are one customer.
/// </summary>
/// <typeparam name="TItem">What the importer writes for a customer (its batch item).</typeparam>
internal sealed class BatchDuplicates<TItem> where TItem : class
{
    private sealed record Entry(TItem Item, Customer Card);

    private readonly DuplicateOptions _options;
    private Dictionary<string, List<Entry>> _current = new(StringComparer.Ordinal);
    private Dictionary<string, List<Entry>> _previous = new(StringComparer.Ordinal);

    public BatchDuplicates(DuplicateOptions options) => _options = options;

    /// <summary>A new batch starts; the last one is now the one being written.</summary>
    public void NextBatch()
    {
        _previous = _current;
        _current = new Dictionary<string, List<Entry>>(StringComparer.Ordinal);
    }

    /// <summary>The batch being written is stored (the store look-ups see it from now on).</summary>
    public void PreviousStored() => _previous = new Dictionary<string, List<Entry>>(StringComparer.Ordinal);

    /// <summary>Files a customer of the current batch (call again after more rows went into it).</summary>
    public void Add(TItem item, Customer card)
    {
        foreach (var key in KeysOf(card))
        {
            if (!_current.TryGetValue(key, out var list))
            {
                _current[key] = list = [];
            }

            if (!list.Exists(e => ReferenceEquals(e.Item, item)))
            {
                list.Add(new Entry(item, card));
            }
        }
    }

    /// <summary>
    /// Customers of the two batches that <paramref name="patch"/> duplicates by phone or by a similar name at the same
    /// place, best rule first, one per customer; <c>Earlier</c> marks those of the batch being written.
    /// </summary>
    public List<(DuplicateMatch Match, TItem Item, bool Earlier)> Find(Customer patch)
    {
        var found = new List<(DuplicateMatch Match, TItem Item, bool Earlier)>();
        void Add(DuplicateMatch m, Entry e, bool earlier)
        {
            if (!found.Exists(f => ReferenceEquals(f.Item, e.Item)))
            {
                found.Add((m, e.Item, earlier));
            }
        }

        if (_options.Phone != DuplicateAction.Off)
        {
            foreach (var phone in DuplicateKeys.Phones(patch))
            {
                foreach (var (e, earlier) in Candidates("p:" + phone))
                {
                    Add(new DuplicateMatch(DuplicateMatch.PhoneRule, e.Card.Id, e.Card.Name, 1, $"same phone {phone}"), e, earlier);
                }
            }
        }

        if (_options.Name != DuplicateAction.Off && Names(patch) is { } name)
        {
            foreach (var key in NameKeys(patch, name.NameKey, name.Squashed))
            {
                foreach (var (e, earlier) in Candidates(key))
                {
                    var other = e.Card.Name ?? "";
                    var score = NameSimilarity.Similarity(name.NameKey, DuplicateKeys.NameKey(other), name.Squashed, DuplicateKeys.Squash(other));
                    if (score >= _options.NameThreshold)
                    {
                        Add(new DuplicateMatch(DuplicateMatch.NameRule, e.Card.Id, other, Math.Round(score, 3),
                            $"similar name '{other}' ({score:0.000}) at the same {(key.StartsWith("z:", StringComparison.Ordinal) ? "postcode" : "city")}"), e, earlier);
                    }
                }
            }
        }

        return found;
    }

    private IEnumerable<(Entry Entry, bool Earlier)> Candidates(string key)
    {
        if (_current.TryGetValue(key, out var now))
        {
            foreach (var e in now)
            {
                yield return (e, false);
            }
        }

        if (_previous.TryGetValue(key, out var before))
        {
            foreach (var e in before)
            {
                yield return (e, true);
            }
        }
    }

    private static IEnumerable<string> KeysOf(Customer card)
    {
        foreach (var phone in DuplicateKeys.Phones(card))
        {
            yield return "p:" + phone;
        }

        if (Names(card) is { } name)
        {
            foreach (var key in NameKeys(card, name.NameKey, name.Squashed))
            {
                yield return key;
            }
        }
    }

    private static (string NameKey, string Squashed)? Names(Customer c)
    {
        if (string.IsNullOrWhiteSpace(c.Name))
        {
            return null;
        }

        var nameKey = DuplicateKeys.NameKey(c.Name);
        return nameKey.Length == 0 ? null : (nameKey, DuplicateKeys.Squash(c.Name));
    }

    /// <summary>Place (postcode, else city, as the finder compares them) with each name block that survives a typing slip.</summary>
    private static IEnumerable<string> NameKeys(Customer c, string nameKey, string squashed)
    {
        var postcodes = DuplicateKeys.PostalCodes(c).ToList();
        var places = postcodes.Count > 0
            ? postcodes.Select(z => "z:" + z)
            : DuplicateKeys.Cities(c).Select(city => "c:" + city);
        var blocks = DuplicateKeys.NameBlocks(nameKey).Concat(DuplicateKeys.SwapBlocks(nameKey, squashed)).Distinct(StringComparer.Ordinal).ToList();
        foreach (var place in places.Distinct(StringComparer.Ordinal))
        {
            foreach (var block in blocks)
            {
                yield return place + "|" + block;
            }
        }
    }
}
