using System.Reflection;
using System.Runtime.CompilerServices;
using CrmEngine.Core.Storage;
using LiteDB;

namespace CrmEngine.Scheduling.Jobs;

/// <summary>
/// The scheduler's way into the engine's one LiteDB database: reads on the caller's thread, every
/// write as one transaction on the store's writer thread (<c>CrmDatabase.WriteAsync</c>, with its
/// durable flush), so the Core's threading rule holds. The Core keeps both members internal; until it
/// grants <c>InternalsVisibleTo("CrmEngine.Scheduling")</c> they are reached here, and only here:
/// with that grant the two bodies become <c>db.Database</c> and <c>db.WriteAsync(_ =&gt; work())</c>.
/// </summary>
internal static class CoreDatabaseSeam
{
    private static readonly MethodInfo WriteAsyncOfObject;
    private static readonly MethodInfo RunOfTransaction;
    private static readonly Type WorkDelegateType;

    static CoreDatabaseSeam()
    {
        var open = typeof(CrmDatabase).GetMethods(BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public)
            .SingleOrDefault(m => m.Name == "WriteAsync" && m.IsGenericMethodDefinition && m.GetParameters().Length == 1)
            ?? throw new InvalidOperationException("CrmDatabase.WriteAsync<T>(Func<WriteTransaction, T>) was not found; the scheduler needs the store's write path.");
        var transactionType = open.GetParameters()[0].ParameterType.GetGenericArguments()[0];
        WriteAsyncOfObject = open.MakeGenericMethod(typeof(object));
        WorkDelegateType = typeof(Func<,>).MakeGenericType(transactionType, typeof(object));
        RunOfTransaction = typeof(Work).GetMethod(nameof(Work.Run))!.MakeGenericMethod(transactionType);
    }

    [UnsafeAccessor(UnsafeAccessorKind.Method, Name = "get_Database")]
    private static extern LiteDatabase GetDatabase(CrmDatabase database);

    public static LiteDatabase Database(CrmDatabase database) => GetDatabase(database);

    /// <summary>Runs <paramref name="work"/> on the writer thread in one transaction (rolled back when it throws).</summary>
    public static async Task<T> WriteAsync<T>(CrmDatabase database, Func<T> work)
    {
        var callback = Delegate.CreateDelegate(WorkDelegateType, new Work(() => work()), RunOfTransaction);
        Task<object> task;
        try
        {
            task = (Task<object>)WriteAsyncOfObject.Invoke(database, [callback])!;
        }
        catch (TargetInvocationException ex) when (ex.InnerException is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(ex.InnerException).Throw();
            throw;
        }

        return (T)(await task.ConfigureAwait(false))!;
    }

    private sealed class Work(Func<object?> work)
    {
        public object? Run<TTransaction>(TTransaction transaction) => work();
    }
}
