//! The kernel imports, grouped by the import library each links against.

use super::*;

// ------------------------------------------------------------- imports

// Each block names the import library it links against: the WDK's
// ndis.lib, ntoskrnl.lib and netio.lib in the real build, and in the CI
// kernel image the import libraries check.sh makes for exactly the libraries
// rustc reports (`--print native-static-libs`), so both link the same set.
#[allow(clippy::too_many_arguments)]
#[cfg_attr(windows, link(name = "ndis"))]
unsafe extern "system" {
    // ndis.sys: miniport.
    pub fn NdisMRegisterMiniportDriver(
        DriverObject: PVOID,
        RegistryPath: PVOID,
        MiniportDriverContext: NDIS_HANDLE,
        MiniportDriverCharacteristics: *const NDIS_MINIPORT_DRIVER_CHARACTERISTICS,
        NdisMiniportDriverHandle: *mut NDIS_HANDLE,
    ) -> NDIS_STATUS;
    pub fn NdisMDeregisterMiniportDriver(NdisMiniportDriverHandle: NDIS_HANDLE);
    pub fn NdisSetOptionalHandlers(
        NdisHandle: NDIS_HANDLE,
        OptionalHandlers: *mut NDIS_OBJECT_HEADER,
    ) -> NDIS_STATUS;
    pub fn NdisMSetMiniportAttributes(
        NdisMiniportAdapterHandle: NDIS_HANDLE,
        MiniportAttributes: *mut NDIS_MINIPORT_ADAPTER_ATTRIBUTES,
    ) -> NDIS_STATUS;
    pub fn NdisMNetPnPEvent(
        MiniportAdapterHandle: NDIS_HANDLE,
        NetPnPEventNotification: *mut NET_PNP_EVENT_NOTIFICATION,
    ) -> NDIS_STATUS;
    pub fn NdisMSendNetBufferListsComplete(
        MiniportAdapterHandle: NDIS_HANDLE,
        NetBufferLists: *mut NET_BUFFER_LIST,
        SendCompleteFlags: ULONG,
    );
    pub fn NdisMPauseComplete(MiniportAdapterHandle: NDIS_HANDLE);
    pub fn NdisMIndicateReceiveNetBufferLists(
        MiniportAdapterHandle: NDIS_HANDLE,
        NetBufferLists: *mut NET_BUFFER_LIST,
        PortNumber: NDIS_PORT_NUMBER,
        NumberOfNetBufferLists: ULONG,
        ReceiveFlags: ULONG,
    );
    // ndis.sys: filter.
    pub fn NdisFRegisterFilterDriver(
        DriverObject: PVOID,
        FilterDriverContext: NDIS_HANDLE,
        FilterDriverCharacteristics: *const NDIS_FILTER_DRIVER_CHARACTERISTICS,
        NdisFilterDriverHandle: *mut NDIS_HANDLE,
    ) -> NDIS_STATUS;
    pub fn NdisFDeregisterFilterDriver(NdisFilterDriverHandle: NDIS_HANDLE);
    pub fn NdisFSetAttributes(
        NdisFilterHandle: NDIS_HANDLE,
        FilterModuleContext: NDIS_HANDLE,
        FilterAttributes: *mut NDIS_FILTER_ATTRIBUTES,
    ) -> NDIS_STATUS;
    pub fn NdisFPauseComplete(NdisFilterHandle: NDIS_HANDLE);
    pub fn NdisFSendNetBufferLists(
        NdisFilterHandle: NDIS_HANDLE,
        NetBufferLists: *mut NET_BUFFER_LIST,
        PortNumber: NDIS_PORT_NUMBER,
        SendFlags: ULONG,
    );
    pub fn NdisFSendNetBufferListsComplete(
        NdisFilterHandle: NDIS_HANDLE,
        NetBufferLists: *mut NET_BUFFER_LIST,
        SendCompleteFlags: ULONG,
    );
    pub fn NdisFIndicateReceiveNetBufferLists(
        NdisFilterHandle: NDIS_HANDLE,
        NetBufferLists: *mut NET_BUFFER_LIST,
        PortNumber: NDIS_PORT_NUMBER,
        NumberOfNetBufferLists: ULONG,
        ReceiveFlags: ULONG,
    );
    pub fn NdisOpenConfigurationEx(
        ConfigObject: *mut NDIS_CONFIGURATION_OBJECT,
        ConfigurationHandle: *mut NDIS_HANDLE,
    ) -> NDIS_STATUS;
    pub fn NdisReadConfiguration(
        Status: *mut NDIS_STATUS,
        ParameterValue: *mut *mut NDIS_CONFIGURATION_PARAMETER,
        ConfigurationHandle: NDIS_HANDLE,
        Keyword: *mut NDIS_STRING,
        ParameterType: u32,
    );
    pub fn NdisCloseConfiguration(ConfigurationHandle: NDIS_HANDLE);
    pub fn NdisFIndicateStatus(NdisFilterHandle: NDIS_HANDLE, StatusIndication: PVOID);
    // ndis.sys: event log (StringsList is an array of NumStrings pointers
    // to NUL-terminated UTF-16 strings; the NdisWriteEventLogEntry page).
    pub fn NdisWriteEventLogEntry(
        LogHandle: PVOID,
        EventCode: NDIS_STATUS,
        UniqueEventValue: ULONG,
        NumStrings: USHORT,
        StringsList: PVOID,
        DataSize: ULONG,
        Data: PVOID,
    ) -> NDIS_STATUS;
    pub fn NdisFReturnNetBufferLists(
        NdisFilterHandle: NDIS_HANDLE,
        NetBufferLists: *mut NET_BUFFER_LIST,
        ReturnFlags: ULONG,
    );
    // ndis.sys: buffers and work items.
    pub fn NdisAllocateNetBufferListPool(
        NdisHandle: NDIS_HANDLE,
        Parameters: *mut NET_BUFFER_LIST_POOL_PARAMETERS,
    ) -> NDIS_HANDLE;
    pub fn NdisFreeNetBufferListPool(PoolHandle: NDIS_HANDLE);
    pub fn NdisAllocateNetBufferAndNetBufferList(
        PoolHandle: NDIS_HANDLE,
        ContextSize: USHORT,
        ContextBackFill: USHORT,
        MdlChain: *mut MDL,
        DataOffset: ULONG,
        DataLength: usize,
    ) -> *mut NET_BUFFER_LIST;
    pub fn NdisFreeNetBufferList(NetBufferList: *mut NET_BUFFER_LIST);
    pub fn NdisAllocateMdl(NdisHandle: NDIS_HANDLE, VirtualAddress: PVOID, Length: u32)
    -> *mut MDL;
    pub fn NdisFreeMdl(Mdl: *mut MDL);
    pub fn NdisGetDataBuffer(
        NetBuffer: *mut NET_BUFFER,
        BytesNeeded: ULONG,
        Storage: PVOID,
        AlignMultiple: u32,
        AlignOffset: u32,
    ) -> PVOID;
    pub fn NdisAllocateIoWorkItem(NdisObjectHandle: NDIS_HANDLE) -> NDIS_HANDLE;
    pub fn NdisQueueIoWorkItem(
        NdisIoWorkItemHandle: NDIS_HANDLE,
        Routine: NDIS_IO_WORKITEM_ROUTINE,
        WorkItemContext: PVOID,
    );
    pub fn NdisFreeIoWorkItem(NdisIoWorkItemHandle: NDIS_HANDLE);
}

#[cfg_attr(windows, link(name = "ntoskrnl"))]
unsafe extern "system" {
    // ntoskrnl.exe
    pub fn KeInitializeDpc(
        Dpc: *mut KDPC,
        DeferredRoutine: PKDEFERRED_ROUTINE,
        DeferredContext: PVOID,
    );
    pub fn KeInsertQueueDpc(
        Dpc: *mut KDPC,
        SystemArgument1: PVOID,
        SystemArgument2: PVOID,
    ) -> BOOLEAN;
    pub fn KeRemoveQueueDpc(Dpc: *mut KDPC) -> BOOLEAN;
    pub fn KeInitializeTimer(Timer: *mut KTIMER);
    pub fn KeSetTimer(Timer: *mut KTIMER, DueTime: LARGE_INTEGER, Dpc: *mut KDPC) -> BOOLEAN;
    pub fn KeCancelTimer(Timer: *mut KTIMER) -> BOOLEAN;
    pub fn KeFlushQueuedDpcs();
    pub fn KeAcquireSpinLockRaiseToDpc(SpinLock: *mut KSPIN_LOCK) -> KIRQL;
    pub fn KeReleaseSpinLock(SpinLock: *mut KSPIN_LOCK, NewIrql: KIRQL);
    pub fn KeQueryUnbiasedInterruptTime() -> u64;
    pub fn MmMapLockedPagesSpecifyCache(
        MemoryDescriptorList: *mut MDL,
        AccessMode: i8,
        CacheType: u32,
        RequestedAddress: PVOID,
        BugCheckOnFailure: u32,
        Priority: u32,
    ) -> PVOID;
    pub fn ExAllocatePool2(Flags: u64, NumberOfBytes: usize, Tag: u32) -> PVOID;
    pub fn ExFreePool(P: PVOID);
}

/// BCryptGenRandom's flag: the system-preferred random number generator,
/// with no algorithm handle (bcrypt.h; supported at PASSIVE_LEVEL only).
pub const BCRYPT_USE_SYSTEM_PREFERRED_RNG: u32 = 0x0000_0002;

#[cfg_attr(windows, link(name = "cng"))]
unsafe extern "system" {
    // cng.sys (kernel-mode CNG, bcrypt.h: "use Cng.lib" in kernel mode, the
    // BCryptGenRandom reference page). The shell's identity seed.
    pub fn BCryptGenRandom(
        hAlgorithm: PVOID,
        pbBuffer: *mut u8,
        cbBuffer: u32,
        dwFlags: u32,
    ) -> NTSTATUS;
}

#[cfg_attr(windows, link(name = "netio"))]
unsafe extern "system" {
    // netio.sys (IP Helper in the kernel, netioapi.h; PASSIVE_LEVEL).
    pub fn GetUnicastIpAddressTable(
        Family: u16,
        Table: *mut *mut MIB_UNICASTIPADDRESS_TABLE,
    ) -> NTSTATUS;
    pub fn FreeMibTable(Memory: PVOID);
    pub fn ResolveIpNetEntry2(
        Row: *mut MIB_IPNET_ROW2,
        SourceAddress: *const SOCKADDR_INET,
    ) -> NTSTATUS;
    /// Fills `Row` for the interface its InterfaceLuid names.
    pub fn GetIfEntry2(Row: *mut MIB_IF_ROW2) -> NTSTATUS;
}

/// `POOL_FLAG_NON_PAGED` for ExAllocatePool2.
pub const POOL_FLAG_NON_PAGED: u64 = 0x40;
