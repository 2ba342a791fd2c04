using CrmEngine.Abstractions.Model;
using CrmEngine.Core.Storage;
using CrmEngine.DataExchange.Duplicates;

namespace CrmEngine.DataExchange.Csv;

/// <summary>
/// What an import can know without asking the store: 64-bit hashes of every look-up key the stored customers hold
/// (ids, external ids, e-mails, phones, postcodes, cities), taken once at the start of a run and extended with every
/// customer the run writes. A key that is not here is held by no customer, so its store look-up is skipped; a key that
/// is here (or a hash collision) is looked up as before. Importing a million new customers then asks the store almost
/// nothing, instead of four indexed queries per row. Built only when the store is small enough to read once (or
/// empty); otherwise every key is looked up.
/// </summary>
internal sealed class KnownKeys
{
    /// <summary>Up to this many stored customers the run reads them once to build the set (a few seconds).</summary>
    public const int MaxScan = 250_000;

    private readonly HashSet<long> _hashes = [];

    public const string Id = "i", External = "x", Email = "e", Phone = "p", Postcode = "z", City = "c";

    public bool MayExist(string kind, string key) => _hashes.Contains(DuplicateScanner.Hash(kind + ":" + key));

    private void Add(string kind, string key) => _hashes.Add(DuplicateScanner.Hash(kind + ":" + key));

    /// <summary>Every key by which <paramref name="c"/> can be found (as the look-ups normalise them).</summary>
    public void Add(Customer c)
    {
        if (c.Id.Length > 0)
        {
            Add(Id, c.Id);
        }

        foreach (var (system, id) in c.ExternalIds)
        {
            Add(External, system + ":" + id);
        }

        foreach (var e in DuplicateKeys.Emails(c))
        {
            Add(Email, e);
        }

        foreach (var p in DuplicateKeys.Phones(c))
        {
            Add(Phone, p);
        }

        foreach (var z in DuplicateKeys.PostalCodes(c))
        {
            Add(Postcode, z);
        }

        foreach (var city in DuplicateKeys.Cities(c))
        {
            Add(City, city);
        }
    }

    /// <summary>The keys of every stored customer, or null when there are more than <see cref="MaxScan"/>.</summary>
    public static KnownKeys? Read(CrmDatabase database)
    {
        var col = database.Database.GetCollection("customers");
        if (col.LongCount() > MaxScan)
        {
            return null;
        }

        var known = new KnownKeys();
        foreach (var doc in col.FindAll())
        {
            known.Add(database.Mapper.ToObject<Customer>(doc));
        }

        return known;
    }
}
