using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Store;
using CrmEngine.Core.Pipeline;
using CrmEngine.Core.Storage;
using LiteDB;

namespace CrmEngine.DataExchange.Duplicates;

/// <summary>One existing customer a record looks like, and by which rule.</summary>
public sealed record DuplicateMatch(string Rule, string CustomerId, string CustomerName, double Score, string Detail)
{
    public const string EmailRule = "email";
    public const string PhoneRule = "phone";
    public const string NameRule = "name";
}

/// <summary>
/// Finds existing customers that a record duplicates: exact on normalised e-mail and phone (the store's look-ups),
/// fuzzy on the name among customers with the same postcode (or, without a postcode, the same city and the same
/// first three letters of the name). Reads run in the open transaction when called from a handler.
/// </summary>
internal sealed class DuplicateFinder
{
    public const string PostcodeIndex = "dx_postcode";
    private const string PostcodePath = "$.Addresses[*].PostalCode";
    private const int CandidateLimit = 200;
    private const string CandidateFields = "{ _id: $._id, Name: $.Name, Addresses: $.Addresses }";

    private readonly WritePipeline _pipeline;
    private int _indexReady;

    public DuplicateFinder(WritePipeline pipeline, DuplicateOptions options)
    {
        _pipeline = pipeline ?? throw new ArgumentNullException(nameof(pipeline));
        Options = options ?? throw new ArgumentNullException(nameof(options));
    }

    public DuplicateOptions Options { get; }

    public CrmDatabase Database => _pipeline.Database;

    /// <summary>
    /// The postcode look-up is a LiteDB index on the customers collection (a multi-key index over the addresses'
    /// postcodes); created once, on the writer thread, so it never races a write.
    /// </summary>
    public async Task EnsureIndexAsync()
    {
        if (Volatile.Read(ref _indexReady) == 1)
        {
            return;
        }

        var db = _pipeline.Database;
        await db.WriteAsync(_ => db.Database.GetCollection("customers").EnsureIndex(PostcodeIndex, PostcodePath));
        Volatile.Write(ref _indexReady, 1);
    }

    public DuplicateAction ActionFor(string rule) => rule switch
    {
        DuplicateMatch.EmailRule => Options.Email,
        DuplicateMatch.PhoneRule => Options.Phone,
        _ => Options.Name,
    };

    /// <summary>Matches of <paramref name="customer"/> among stored customers other than <paramref name="excludeId"/>, best first, one per customer.</summary>
    public Task<IReadOnlyList<DuplicateMatch>> FindAsync(ICrmStore store, Customer customer, string? excludeId,
        CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        // Inside a handler the read runs in the write's transaction (writer thread); elsewhere right here.
        return _pipeline.RouteRead(() => Find(store, customer, excludeId));
    }

    /// <summary>
    /// <see cref="FindAsync"/> on the calling thread, for a batch of look-ups inside one read snapshot
    /// (<c>CrmDatabase.ReadSnapshot</c>). E-mails in <paramref name="emailsLookedUp"/> were already looked up by the caller
    /// and found nobody, so they are not asked again.
    /// </summary>
    /// <param name="mayExist">When given: (kind, normalised key) → false when no stored customer holds the key
    /// (<c>KnownKeys</c> of an import run); that look-up is skipped.</param>
    public IReadOnlyList<DuplicateMatch> Find(ICrmStore store, Customer customer, string? excludeId, ISet<string>? emailsLookedUp = null,
        Func<string, string, bool>? mayExist = null)
    {
        mayExist ??= static (_, _) => true;
        var customers = store.Customers as EntitySet<Customer>
            ?? throw new InvalidOperationException("duplicate look-ups need the engine's own store");
        var found = new Dictionary<string, DuplicateMatch>(StringComparer.Ordinal);
        void Add(DuplicateMatch m)
        {
            if (m.CustomerId == excludeId || (found.TryGetValue(m.CustomerId, out var had) && Rank(had) <= Rank(m)))
            {
                return;
            }

            found[m.CustomerId] = m;
        }

        if (Options.Email != DuplicateAction.Off)
        {
            foreach (var email in DuplicateKeys.Emails(customer))
            {
                if (emailsLookedUp?.Contains(email) == true || !mayExist("e", email))
                {
                    continue;
                }

                foreach (var other in customers.FindNow(IndexedField.Email, email, 5))
                {
                    Add(new DuplicateMatch(DuplicateMatch.EmailRule, other.Id, other.Name, 1, $"same e-mail {email}"));
                }
            }
        }

        if (Options.Phone != DuplicateAction.Off)
        {
            foreach (var phone in DuplicateKeys.Phones(customer))
            {
                if (!mayExist("p", phone))
                {
                    continue;
                }

                foreach (var other in customers.FindNow(IndexedField.Phone, phone, 5))
                {
                    Add(new DuplicateMatch(DuplicateMatch.PhoneRule, other.Id, other.Name, 1, $"same phone {phone}"));
                }
            }
        }

        if (Options.Name != DuplicateAction.Off && !string.IsNullOrWhiteSpace(customer.Name))
        {
            foreach (var m in Fuzzy(customer, mayExist))
            {
                Add(m);
            }
        }

        return found.Values.OrderBy(Rank).ThenByDescending(m => m.Score).ToList();

        static int Rank(DuplicateMatch m) => m.Rule switch { DuplicateMatch.EmailRule => 0, DuplicateMatch.PhoneRule => 1, _ => 2 };
    }

    private List<DuplicateMatch> Fuzzy(Customer customer, Func<string, string, bool> mayExist)
    {
        var nameKey = DuplicateKeys.NameKey(customer.Name);
        if (nameKey.Length == 0)
        {
            return [];
        }

        var squashed = DuplicateKeys.Squash(customer.Name);
        var postcodes = DuplicateKeys.PostalCodes(customer).ToHashSet(StringComparer.Ordinal);
        var cities = DuplicateKeys.Cities(customer).ToHashSet(StringComparer.Ordinal);
        var rawPostcodes = customer.Addresses.Select(a => a.PostalCode?.Trim()).Where(p => !string.IsNullOrEmpty(p))
            .SelectMany(p => new[] { p!, p!.ToUpperInvariant(), DuplicateKeys.PostalCode(p)! }).Distinct(StringComparer.Ordinal).ToList();
        if (rawPostcodes.Count == 0 && cities.Count == 0)
        {
            return [];
        }

        // Nobody stored at any of these places: nothing to compare with.
        if (postcodes.Count > 0 ? !postcodes.Any(z => mayExist("z", z)) : !cities.Any(c => mayExist("c", c)))
        {
            return [];
        }

        var db = _pipeline.Database;
        var col = db.Database.GetCollection("customers");
        var docs = new List<BsonDocument>();
        // Only the three fields compared are read (LiteDB skips the others' values while reading a document).
        IEnumerable<BsonDocument> Candidates(BsonExpression where) =>
            col.Query().Where(where).Select(BsonExpression.Create(CandidateFields)).Limit(CandidateLimit).ToDocuments();
        if (rawPostcodes.Count > 0)
        {
            foreach (var p in rawPostcodes)
            {
                docs.AddRange(Candidates(BsonExpression.Create(PostcodePath + " ANY = @0", p)));
            }
        }
        else
        {
            // No postcode: customers whose stored name starts like this one (the store's name look-up), same city.
            var lower = customer.Name.Trim().ToLowerInvariant();
            var prefix = lower.Length > 3 ? lower[..3] : lower;
            docs.AddRange(Candidates(IndexReads.PrefixPredicate(IndexedField.Name, prefix)));
        }

        var result = new List<DuplicateMatch>();
        // Candidates are read from their BSON (id, name, address places), not mapped to whole cards: at a million
        // customers every new row meets the customers of its postcode, and mapping them was most of the look-up cost.
        foreach (var doc in docs.DistinctBy(d => d["_id"].AsString))
        {
            var places = doc["Addresses"].IsArray
                ? doc["Addresses"].AsArray.Where(a => a.IsDocument).Select(a => a.AsDocument).ToList()
                : [];
            var samePlace = postcodes.Count > 0
                ? places.Any(a => a["PostalCode"].IsString && DuplicateKeys.PostalCode(a["PostalCode"].AsString) is { } z && postcodes.Contains(z))
                : places.Any(a => a["City"].IsString && DuplicateKeys.City(a["City"].AsString) is { } c && cities.Contains(c));
            if (!samePlace)
            {
                continue;
            }

            var otherName = doc["Name"].IsString ? doc["Name"].AsString : "";
            var score = NameSimilarity.Similarity(nameKey, DuplicateKeys.NameKey(otherName), squashed, DuplicateKeys.Squash(otherName));
            if (score >= Options.NameThreshold)
            {
                result.Add(new DuplicateMatch(DuplicateMatch.NameRule, doc["_id"].AsString, otherName, Math.Round(score, 3),
                    $"similar name '{otherName}' ({score:0.000}) at the same {(postcodes.Count > 0 ? "postcode" : "city")}"));
            }
        }

        return result;
    }
}
