using CrmEngine.Core.Storage;
using LiteDB;

namespace CrmEngine.Scheduling.Jobs;

/// <summary>
/// The scheduler's way into the engine's one LiteDB database: reads on the caller's thread, every
/// write as one transaction on the store's writer thread (<c>CrmDatabase.WriteAsync</c>, with its
/// durable flush), so the Core's threading rule holds. Both members are internal to the Core, which
/// grants <c>InternalsVisibleTo("CrmEngine.Scheduling")</c>.
/// </summary>
internal static class CoreDatabaseSeam
{
    public static LiteDatabase Database(CrmDatabase database) => database.Database;

    /// <summary>Runs <paramref name="work"/> on the writer thread in one transaction (rolled back when it throws).</summary>
    public static Task<T> WriteAsync<T>(CrmDatabase database, Func<T> work) => database.WriteAsync(_ => work());
}
