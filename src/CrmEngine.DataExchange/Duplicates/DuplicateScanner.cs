using System.Diagnostics;
using System.Globalization;
using System.Text;
using CrmEngine.Core.Storage;
using CsvHelper;
using LiteDB;

namespace CrmEngine.DataExchange.Duplicates;

/// <summary>One customer in a duplicate group.</summary>
public sealed record DuplicateGroupMember(int Group, string CustomerId, string Name, string Rule, double Score);

/// <summary>What a scan found, and what it cost.</summary>
public sealed record DuplicateScanResult(long Customers, int Groups, long CustomersInGroups, int SkippedBlocks, long Comparisons,
    TimeSpan Elapsed, long PeakManagedBytes, IReadOnlyList<DuplicateGroupMember> Members)
{
    public string ToText(string? outFile)
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture,
            $"{Customers} customers scanned: {Groups} duplicate groups ({CustomersInGroups} customers), {Comparisons} fuzzy comparisons, ")
          .Append(CultureInfo.InvariantCulture, $"{SkippedBlocks} blocks too large to compare, {Elapsed.TotalSeconds:0.0} s, managed memory peak {PeakManagedBytes / 1048576.0:0} MiB")
          .AppendLine();
        if (outFile is not null)
        {
            sb.Append("groups written to ").AppendLine(outFile);
        }
        else
        {
            foreach (var g in Members.GroupBy(m => m.Group).Take(50))
            {
                sb.Append(CultureInfo.InvariantCulture, $"group {g.Key} ({g.First().Rule}, score {g.First().Score:0.000}):");
                foreach (var m in g)
                {
                    sb.Append(CultureInfo.InvariantCulture, $" {m.CustomerId} '{m.Name}'");
                }

                sb.AppendLine();
            }

            if (Groups > 50)
            {
                sb.AppendLine("... (use --out groups.csv for all groups)");
            }
        }

        return sb.ToString();
    }
}

/// <summary>
/// Finds groups of duplicates among all customers, built for millions: pass 1 streams the customers a page at a
/// time and keeps only 12 bytes per blocking key (a 62-bit key hash with the rule in the low bits, and the
/// customer's position): normalised e-mail, normalised phone, postcode + first three letters of each name token
/// (city instead of postcode when there is none). Sorting the keys gives the blocks. Pass 2 streams again and loads
/// only customers that share a block with someone. Exact blocks are verified (hash collisions) and joined; fuzzy
/// blocks are compared pairwise (Jaro-Winkler of token-sorted names, the configured threshold) only when they are at
/// most <see cref="DuplicateOptions.ScanMaxBlockSize"/> large. Union-find turns the links into groups.
/// </summary>
public sealed class DuplicateScanner
{
    private const int Page = 5000;
    private const long RuleEmail = 0, RulePhone = 1, RuleName = 2;
    private readonly CrmDatabase _database;
    private readonly DuplicateOptions _options;

    internal DuplicateScanner(CrmDatabase database, DuplicateOptions options)
    {
        _database = database;
        _options = options;
    }

    private sealed class Candidate
    {
        public required string Id;
        public required string Name;
        public required string NameKey;
        public required string Squashed;
        public required HashSet<string> Emails;
        public required HashSet<string> Phones;
        public required HashSet<string> Places;
    }

    public async Task<DuplicateScanResult> ScanAsync(string? outFile = null, IProgress<string>? progress = null, CancellationToken cancellationToken = default)
    {
        var clock = Stopwatch.StartNew();
        long peak = 0;
        void Sample() => peak = Math.Max(peak, GC.GetTotalMemory(false));

        // Pass 1: keys only.
        var keys = new List<long>(1 << 16);
        var owners = new List<int>(1 << 16);
        var idHashes = new List<long>(1 << 16);
        var count = 0;
        await StreamAsync(doc =>
        {
            var ordinal = count++;
            idHashes.Add(Hash(doc["_id"].AsString));
            foreach (var (key, rule) in BlockKeys(doc))
            {
                keys.Add((Hash(key) & ~3L) | rule);
                owners.Add(ordinal);
            }

            if (count % 100_000 == 0)
            {
                Sample();
                progress?.Report($"pass 1: {count} customers read");
            }
        }, cancellationToken);
        Sample();

        var keyArray = keys.ToArray();
        var ownerArray = owners.ToArray();
        keys = null;
        owners = null;
        Array.Sort(keyArray, ownerArray);
        var blocks = new List<(int Start, int Length)>();
        var skipped = 0;
        var wanted = new Dictionary<long, int>();
        for (var start = 0; start < keyArray.Length;)
        {
            var end = start + 1;
            while (end < keyArray.Length && keyArray[end] == keyArray[start])
            {
                end++;
            }

            var length = end - start;
            if (length >= 2)
            {
                if (length > _options.ScanMaxBlockSize && (keyArray[start] & 3) == RuleName)
                {
                    skipped++;
                }
                else
                {
                    blocks.Add((start, length));
                    for (var i = start; i < end; i++)
                    {
                        wanted.TryAdd(idHashes[ownerArray[i]], ownerArray[i]);
                    }
                }
            }

            start = end;
        }

        Sample();
        progress?.Report($"pass 1 done: {count} customers, {keyArray.Length} keys, {blocks.Count} blocks, {wanted.Count} candidates");

        // Pass 2: the candidates only.
        var candidates = new Dictionary<int, Candidate>(wanted.Count);
        await StreamAsync(doc =>
        {
            if (wanted.TryGetValue(Hash(doc["_id"].AsString), out var ordinal))
            {
                candidates[ordinal] = Load(doc);
            }
        }, cancellationToken);
        Sample();

        var parent = new Dictionary<int, int>();
        var edges = new Dictionary<int, (string Rule, double Score)>();
        long comparisons = 0;
        foreach (var (start, length) in blocks)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var rule = keyArray[start] & 3;
            for (var i = start; i < start + length; i++)
            {
                if (!candidates.TryGetValue(ownerArray[i], out var a))
                {
                    continue;
                }

                for (var j = i + 1; j < start + length; j++)
                {
                    if (ownerArray[j] == ownerArray[i] || !candidates.TryGetValue(ownerArray[j], out var b))
                    {
                        continue;
                    }

                    var (linked, ruleName, score) = rule switch
                    {
                        RuleEmail => (a.Emails.Overlaps(b.Emails), DuplicateMatch.EmailRule, 1.0),
                        RulePhone => (a.Phones.Overlaps(b.Phones), DuplicateMatch.PhoneRule, 1.0),
                        _ => Fuzzy(a, b),
                    };
                    if (rule == RuleName)
                    {
                        comparisons++;
                    }

                    if (linked)
                    {
                        Union(parent, edges, ownerArray[i], ownerArray[j], ruleName, score);
                    }
                }
            }
        }

        var members = new List<DuplicateGroupMember>();
        var groupNumbers = new Dictionary<int, int>();
        foreach (var ordinal in parent.Keys.Order())
        {
            var root = Find(parent, ordinal);
            if (!groupNumbers.TryGetValue(root, out var number))
            {
                groupNumbers[root] = number = groupNumbers.Count + 1;
            }

            var c = candidates[ordinal];
            var (ruleText, score) = edges[root];
            members.Add(new DuplicateGroupMember(number, c.Id, c.Name, ruleText, Math.Round(score, 3)));
        }

        members.Sort((x, y) => x.Group.CompareTo(y.Group));
        Sample();
        if (outFile is not null)
        {
            var partial = outFile + ".partial";
            using (var writer = CsvWriter.ToFile(partial, new CsvWriterOptions { WriteByteOrderMark = true }))
            {
                writer.WriteRecord(["group", "customerId", "name", "rule", "score"]);
                foreach (var m in members)
                {
                    writer.WriteRecord([m.Group.ToString(CultureInfo.InvariantCulture), m.CustomerId, m.Name, m.Rule, m.Score.ToString("0.000", CultureInfo.InvariantCulture)]);
                }
            }

            File.Move(partial, outFile, overwrite: true);
        }

        return new DuplicateScanResult(count, groupNumbers.Count, members.Count, skipped, comparisons, clock.Elapsed, peak,
            outFile is null ? members : members.Where(m => m.Group <= 50).ToList());

        (bool, string, double) Fuzzy(Candidate a, Candidate b)
        {
            if (!a.Places.Overlaps(b.Places))
            {
                return (false, DuplicateMatch.NameRule, 0);
            }

            var s = NameSimilarity.Similarity(a.NameKey, b.NameKey, a.Squashed, b.Squashed);
            return (s >= _options.NameThreshold, DuplicateMatch.NameRule, s);
        }
    }

    private static int Find(Dictionary<int, int> parent, int x)
    {
        var root = x;
        while (parent.TryGetValue(root, out var p) && p != root)
        {
            root = p;
        }

        while (x != root)
        {
            var next = parent[x];
            parent[x] = root;
            x = next;
        }

        return root;
    }

    private static void Union(Dictionary<int, int> parent, Dictionary<int, (string Rule, double Score)> edges, int a, int b, string rule, double score)
    {
        parent.TryAdd(a, a);
        parent.TryAdd(b, b);
        var ra = Find(parent, a);
        var rb = Find(parent, b);
        (string Rule, double Score) ea = edges.TryGetValue(ra, out var xa) ? xa : (rule, score);
        (string Rule, double Score) eb = edges.TryGetValue(rb, out var xb) ? xb : (rule, score);
        var rules = string.Join("+", $"{ea.Rule}+{eb.Rule}+{rule}".Split('+').Distinct().Order(StringComparer.Ordinal));
        var weakest = Math.Min(score, Math.Min(ea.Score, eb.Score));
        if (ra != rb)
        {
            parent[rb] = ra;
            edges.Remove(rb);
        }

        edges[ra] = (rules, weakest);
    }

    private static IEnumerable<(string Key, long Rule)> BlockKeys(BsonDocument doc)
    {
        foreach (var e in Strings(doc, "Emails"))
        {
            if (DuplicateKeys.Email(e) is { } key)
            {
                yield return ("e" + key, RuleEmail);
            }
        }

        foreach (var p in Strings(doc, "Phones"))
        {
            if (DuplicateKeys.Phone(p) is { } key)
            {
                yield return ("p" + key, RulePhone);
            }
        }

        var name = doc["Name"].IsString ? doc["Name"].AsString : "";
        var nameKey = DuplicateKeys.NameKey(name);
        if (nameKey.Length == 0)
        {
            yield break;
        }

        var blocks = DuplicateKeys.NameBlocks(nameKey).Concat(DuplicateKeys.SwapBlocks(nameKey, DuplicateKeys.Squash(name)))
            .Distinct(StringComparer.Ordinal).ToList();
        foreach (var place in Places(doc))
        {
            foreach (var block in blocks)
            {
                yield return ("n" + place + "\u0001" + block, RuleName);
            }
        }
    }

    /// <summary>Postcodes of the addresses, or their cities when no address has a postcode.</summary>
    private static HashSet<string> Places(BsonDocument doc)
    {
        var postcodes = new HashSet<string>(StringComparer.Ordinal);
        var cities = new HashSet<string>(StringComparer.Ordinal);
        if (doc["Addresses"].IsArray)
        {
            foreach (var a in doc["Addresses"].AsArray.Where(a => a.IsDocument).Select(a => a.AsDocument))
            {
                if (a["PostalCode"].IsString && DuplicateKeys.PostalCode(a["PostalCode"].AsString) is { } p)
                {
                    postcodes.Add("z" + p);
                }

                if (a["City"].IsString && DuplicateKeys.City(a["City"].AsString) is { } c)
                {
                    cities.Add("c" + c);
                }
            }
        }

        return postcodes.Count > 0 ? postcodes : cities;
    }

    private static IEnumerable<string> Strings(BsonDocument doc, string field) =>
        doc[field].IsArray ? doc[field].AsArray.Where(v => v.IsString).Select(v => v.AsString) : [];

    private static Candidate Load(BsonDocument doc)
    {
        var name = doc["Name"].IsString ? doc["Name"].AsString : "";
        return new Candidate
        {
            Id = doc["_id"].AsString,
            Name = name,
            NameKey = DuplicateKeys.NameKey(name),
            Squashed = DuplicateKeys.Squash(name),
            Emails = Strings(doc, "Emails").Select(DuplicateKeys.Email).OfType<string>().ToHashSet(StringComparer.Ordinal),
            Phones = Strings(doc, "Phones").Select(DuplicateKeys.Phone).OfType<string>().ToHashSet(StringComparer.Ordinal),
            Places = Places(doc),
        };
    }

    /// <summary>64-bit FNV-1a over the UTF-16 code units, finished with a mixer; collisions are checked in pass 2.</summary>
    internal static long Hash(string text)
    {
        var h = 14695981039346656037UL;
        foreach (var c in text)
        {
            h = (h ^ c) * 1099511628211UL;
        }

        h ^= h >> 33;
        h *= 0xff51afd7ed558ccdUL;
        h ^= h >> 33;
        return (long)h;
    }

    /// <summary>All customers in id order, a page at a time (each page a short read; writers are not held up).</summary>
    private async Task StreamAsync(Action<BsonDocument> each, CancellationToken ct)
    {
        var col = _database.Database.GetCollection("customers");
        var after = "";
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            var page = col.Find(Query.GT("_id", after), 0, Page).ToList();
            foreach (var doc in page)
            {
                each(doc);
            }

            if (page.Count < Page)
            {
                return;
            }

            after = page[^1]["_id"].AsString;
            await Task.Yield();
        }
    }
}
