using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using CrmEngine.Abstractions.Http;
using CrmEngine.Core.Storage;
using LiteDB;

namespace CrmEngine.Api.Keys;

/// <summary>What is kept about one API key (never the key itself: only the SHA-256 of it).</summary>
public sealed record ApiKeyInfo(
    string Id,
    string Name,
    ApiScope Scope,
    DateTimeOffset Created,
    DateTimeOffset? Expires,
    DateTimeOffset? LastUsed,
    DateTimeOffset? Revoked,
    string? OwnerUserId)
{
    public bool IsRevoked => Revoked is not null;

    public bool IsExpired(DateTimeOffset now) => Expires is { } e && e <= now;
}

/// <summary>A key just created: <see cref="Key"/> is shown once and never stored.</summary>
public sealed record CreatedApiKey(ApiKeyInfo Info, string Key);

/// <summary>Why a presented key was refused (or null when it was accepted).</summary>
internal enum KeyRefusal { None, Unknown, Revoked, Expired }

/// <summary>
/// API keys in the internal collection <c>_apikeys</c> of the engine's store. Keys are 32 random bytes
/// (base64url, prefixed <c>crm_</c>); only their SHA-256 is stored: a high-entropy secret needs no slow hash,
/// and the digest found by the index is compared again in constant time. Every write runs on the store's
/// writer thread (<c>CrmDatabase.WriteAsync</c>); reads run on the caller's thread.
/// Verified keys are cached in memory by hash for at most <see cref="CacheBound"/>, so a busy client does not read
/// LiteDB per request; a revoke through this store drops the key from the cache at once, and a change made by
/// anything else (another process on the database) is seen within the bound.
/// </summary>
internal sealed class ApiKeyStore
{
    internal const string Collection = "_apikeys";
    internal const string KeyPrefix = "crm_";

    // Last-used is written at most this often per key, so a busy client does not turn every read into a write.
    private static readonly TimeSpan LastUsedResolution = TimeSpan.FromMinutes(1);

    /// <summary>Longest time a cached key is trusted without reading the store again (documented in docs/api.md).</summary>
    internal static readonly TimeSpan CacheBound = TimeSpan.FromSeconds(10);

    // A flood of distinct valid keys cannot grow the cache without limit; past this it starts over.
    private const int CacheLimit = 10_000;

    private readonly CrmDatabase _db;
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<string, CachedKey> _cache = new(StringComparer.Ordinal);
    private long _generation;

    /// <summary>A key read from the store and when; <see cref="Info"/> is replaced when last-used is written.</summary>
    private sealed class CachedKey(ApiKeyInfo info, DateTimeOffset loaded)
    {
        public ApiKeyInfo Info { get; set; } = info;

        public DateTimeOffset Loaded { get; } = loaded;
    }

    public ApiKeyStore(CrmDatabase database, TimeProvider? time = null)
    {
        _db = database ?? throw new ArgumentNullException(nameof(database));
        _time = time ?? database.TimeProvider;
        _db.WriteAsync(_ =>
        {
            // The change feed is read by /api/changes from the first request on. Created here, in a write of its own,
            // so LiteDB never serves a read of it while the first data write is creating it (seen as a LiteException).
            _db.Database.GetCollection(CrmDatabase.ChangesCollection).EnsureIndex("_id");
            _db.Database.GetCollection(CrmDatabase.AuditCollection).EnsureIndex("_id");
            Keys.EnsureIndex("ix_hash", "$.hash", unique: true);
            Keys.EnsureIndex("ix_name", "LOWER($.name)", unique: false);
            return true;
        }).GetAwaiter().GetResult();
    }

    private ILiteCollection<BsonDocument> Keys => _db.Database.GetCollection(Collection);

    /// <summary>Creates a key; <paramref name="owner"/> is the user it acts as (checked by the caller), null for none (<c>sys-api</c>).</summary>
    public async Task<CreatedApiKey> CreateAsync(string name, ApiScope scope, DateTimeOffset? expires, string? owner = null, CancellationToken cancellationToken = default)
    {
        name = (name ?? "").Trim();
        if (name.Length is 0 or > 100 || name.Any(c => char.IsControl(c) || char.IsWhiteSpace(c)))
        {
            throw new ArgumentException($"the key name '{name}' is not valid: use 1-100 characters without spaces (for example ops-sync)", nameof(name));
        }

        var now = _time.GetUtcNow();
        if (expires is { } e && e <= now)
        {
            throw new ArgumentException($"--expires {e:O} is not in the future", nameof(expires));
        }

        cancellationToken.ThrowIfCancellationRequested();
        var key = KeyPrefix + Base64Url(RandomNumberGenerator.GetBytes(32));
        var info = new ApiKeyInfo(NewId(), name, scope, now, expires, null, null, owner);
        var doc = new BsonDocument
        {
            ["_id"] = info.Id,
            ["name"] = name,
            ["scope"] = scope.ToString(),
            ["hash"] = new BsonValue(Hash(key)),
            ["created"] = Text(now),
            ["expires"] = expires is { } x ? Text(x) : BsonValue.Null,
            ["lastUsed"] = BsonValue.Null,
            ["revoked"] = BsonValue.Null,
            // The user the key acts as (crm:user claim); none: the system user sys-api.
            ["owner"] = owner is null ? BsonValue.Null : owner,
        };
        await _db.WriteAsync(_ =>
        {
            // Names identify keys in the audit log (apikey:<name>): one live key per name.
            if (Keys.Find(Query.EQ("LOWER($.name)", name.ToLowerInvariant())).Select(ToInfo).Any(k => !k.IsRevoked))
            {
                throw new ArgumentException($"a key named '{name}' already exists; revoke it first or pick another name", nameof(name));
            }

            Keys.Insert(doc);
            return true;
        });
        return new CreatedApiKey(info, key);
    }

    public IReadOnlyList<ApiKeyInfo> List() =>
        Keys.FindAll().Select(ToInfo).OrderBy(k => k.Created).ThenBy(k => k.Id, StringComparer.Ordinal).ToList();

    /// <summary>Revokes the key with this id, or else the live key with this name; null when none matches.</summary>
    public async Task<ApiKeyInfo?> RevokeAsync(string nameOrId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(nameOrId);
        cancellationToken.ThrowIfCancellationRequested();
        var now = _time.GetUtcNow();
        var revoked = await _db.WriteAsync(_ =>
        {
            var doc = Keys.FindById(nameOrId.Trim())
                      ?? Keys.Find(Query.EQ("LOWER($.name)", nameOrId.Trim().ToLowerInvariant()))
                          .OrderBy(d => d["revoked"].IsNull ? 0 : 1).FirstOrDefault();
            if (doc is null)
            {
                return null;
            }

            if (doc["revoked"].IsNull)
            {
                doc["revoked"] = Text(now);
                Keys.Update(doc);
            }

            return ToInfo(doc);
        });

        if (revoked is not null)
        {
            // After the commit, so the next request with this key reads the revocation and is refused.
            Forget(revoked.Id);
        }

        return revoked;
    }

    private void Forget(string keyId)
    {
        // A lookup that read the store before the commit must not put the old state back in the cache.
        Interlocked.Increment(ref _generation);
        foreach (var (hash, cached) in _cache)
        {
            if (cached.Info.Id == keyId)
            {
                _cache.TryRemove(hash, out _);
            }
        }
    }

    /// <summary>Looks a presented key up; a refused key says why (for the 401 answer, never the key).</summary>
    public (ApiKeyInfo? Key, KeyRefusal Refusal) Authenticate(string presented)
    {
        if (string.IsNullOrEmpty(presented) || presented.Length > 200)
        {
            return (null, KeyRefusal.Unknown);
        }

        var hash = Hash(presented);
        var now = _time.GetUtcNow();
        var cacheKey = Convert.ToBase64String(hash);
        CachedKey? cached = null;
        if (_cache.TryGetValue(cacheKey, out var hit) && now - hit.Loaded < CacheBound && now >= hit.Loaded)
        {
            cached = hit;
        }
        else
        {
            var generation = Interlocked.Read(ref _generation);
            var doc = Keys.FindOne(Query.EQ("hash", new BsonValue(hash)));
            if (doc is null || !CryptographicOperations.FixedTimeEquals(doc["hash"].AsBinary, hash))
            {
                // Unknown keys are not cached: they would let anyone fill the cache.
                _cache.TryRemove(cacheKey, out _);
                return (null, KeyRefusal.Unknown);
            }

            if (_cache.Count >= CacheLimit)
            {
                _cache.Clear();
            }

            cached = new CachedKey(ToInfo(doc), now);
            if (Interlocked.Read(ref _generation) == generation)
            {
                _cache[cacheKey] = cached;
            }
        }

        var info = cached.Info;
        if (info.IsRevoked)
        {
            return (info, KeyRefusal.Revoked);
        }

        if (info.IsExpired(now))
        {
            return (info, KeyRefusal.Expired);
        }

        if (info.LastUsed is not { } last || now - last >= LastUsedResolution)
        {
            // Not awaited: the request does not wait for a disk sync to record when the key was last used.
            cached.Info = info with { LastUsed = now };
            _ = TouchAsync(info.Id, now);
        }

        return (info, KeyRefusal.None);
    }

    private async Task TouchAsync(string id, DateTimeOffset now)
    {
        try
        {
            await _db.WriteAsync(_ =>
            {
                if (Keys.FindById(id) is { } d)
                {
                    d["lastUsed"] = Text(now);
                    Keys.Update(d);
                }

                return true;
            });
        }
        catch (Exception ex) when (ex is ObjectDisposedException or LiteException or CrmEngine.Abstractions.Store.StoreException)
        {
            // Shutting down or the store refused the write: last-used is informational only.
        }
    }

    /// <summary>
    /// A user of the access model read straight from the store (the security collection <c>users</c>), so that
    /// <c>crm apikeys create --user</c> can check the user on a stopped engine as well as in the running one.
    /// </summary>
    internal CrmEngine.Security.SecurityUser? FindUser(string id)
    {
        foreach (var name in new[]
                 {
                     CoreEntities.CollectionNameFor(CrmEngine.Security.SecurityDirectory.Owner, "users"),
                     CoreEntities.LegacyCollectionNameFor(CrmEngine.Security.SecurityDirectory.EntityName("users")),
                 })
        {
            if (_db.Database.CollectionExists(name) && _db.Database.GetCollection(name).FindById(id) is { } doc)
            {
                return _db.Mapper.ToObject<CrmEngine.Security.SecurityUser>(doc);
            }
        }

        return null;
    }

    internal static byte[] Hash(string key) => SHA256.HashData(Encoding.UTF8.GetBytes(key));

    private static string NewId() => "key_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    private static string Text(DateTimeOffset value) => value.ToUniversalTime().ToString("O", CultureInfo.InvariantCulture);

    private static DateTimeOffset? Instant(BsonValue value) =>
        value is null || value.IsNull ? null : DateTimeOffset.Parse(value.AsString, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind);

    private static ApiKeyInfo ToInfo(BsonDocument d) => new(
        d["_id"].AsString,
        d["name"].AsString,
        Enum.Parse<ApiScope>(d["scope"].AsString),
        Instant(d["created"])!.Value,
        Instant(d["expires"]),
        Instant(d["lastUsed"]),
        Instant(d["revoked"]),
        d["owner"].IsNull ? null : d["owner"].AsString);
}
